import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionManager, type StoreRecord } from '../../src/index.js';
import { launchChromium } from '../helpers/browser.js';
import { startChild } from '../helpers/child.js';
import { browserLogin, DPOP_TEST_KEY } from '../helpers/dpop-login.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';
import { openStore, sharedStores } from '../helpers/store-config.js';

// 8 processes x 100 callers on one expired DPoP-bound session (oidc-provider: nonces required,
// rotation, a public client whose refresh token works only with the session's key): exactly one
// refresh, no invalid_dpop_proof, no reuse, and every process's API call accepted.

const PROCESSES = 8;
const CALLERS = 100;
let op: RealAuthServer;
let browser: Browser;
const { stores, cleanup } = sharedStores();
const dirs: string[] = [];

beforeAll(async () => {
  op = await startRealAuthServer();
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await op?.close();
  await cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.each(stores.filter(([name]) => name !== 'PostgreSQL'))('%s', (_name, configFor) => {
  it(`${PROCESSES} processes x ${CALLERS} callers on an expired DPoP session: one refresh, every proof accepted`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-dpop-storm-'));
    dirs.push(dir);
    const config = configFor(join(dir, 'store'));
    const manager = new SessionManager({
      store: openStore(config),
      issuer: op.issuer,
      client: { clientId: op.dpopClientId },
      encryption: { keys: { k1: DPOP_TEST_KEY }, current: 'k1' },
      dpop: true,
    });
    await browserLogin(browser, manager, 'alice', 'storm');
    // The access token expires (its stored expiry in the past): every caller needs a renewal.
    const key = 'tokenkeeper:s:storm';
    const entry = await manager.store.get(key);
    const value = structuredClone(entry?.value) as StoreRecord & { tokens: { expiresAt: number } };
    value.tokens.expiresAt = Date.now() - 1_000;
    await manager.store.set(key, value, { ifVersion: entry?.version });

    const go = join(dir, 'go');
    const workerConfig = {
      store: config,
      issuer: op.issuer,
      clientId: op.dpopClientId,
      key: DPOP_TEST_KEY,
      sessionId: 'storm',
      callers: CALLERS,
      go,
      api: `${op.issuer}/me`,
    };
    const refreshes = op.counts.refresh_token;
    const errors = op.counts.errors;
    const children = Array.from({ length: PROCESSES }, () =>
      startChild('dpop-worker.ts', [JSON.stringify(workerConfig)]),
    );
    const deadline = Date.now() + 40_000;
    while (children.some((c) => !c.output().includes('ready')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    writeFileSync(go, '');
    const results = await Promise.all(children.map((c) => c.done));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const outcomes = results.map(
      (r) =>
        JSON.parse(r.stdout.trim().split('\n').pop() as string) as { distinct: number; errors: string[]; api: number },
    );
    expect(outcomes.flatMap((o) => o.errors)).toEqual([]);
    expect(outcomes.map((o) => o.api)).toEqual(outcomes.map(() => 200));
    expect(outcomes.map((o) => o.distinct)).toEqual(outcomes.map(() => 1));
    expect(op.counts.refresh_token - refreshes).toBe(1);
    expect(op.counts.errors - errors).toBe(0); // no invalid_dpop_proof, no reused refresh token
    // The session is still good afterwards: the rotated refresh token was never reused.
    const after = await manager.get('storm');
    expect(await after?.getAccessToken({ forceRefresh: true })).toBeTruthy();
    await manager.store.close();
  }, 90_000);
});
