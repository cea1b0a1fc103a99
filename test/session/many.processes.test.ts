// A burst of many expired sessions in one process (users coming back after a deploy or an
// outage): a thousand renewals at once queue behind the per-process bound and a small database
// pool instead of failing. Every call gets a token, each session is refreshed once, and no
// refresh token reaches the server twice. A real process, real PostgreSQL, the strict fake server.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/exports/postgres.js';
import { SessionManager } from '../../src/index.js';
import { startChild, waitForOutput } from '../helpers/child.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';
import { DATABASE_URL } from '../helpers/services.js';
import { sharedStores } from '../helpers/store-config.js';

let as: FakeAuthServer;
const { stores, cleanup } = sharedStores();
beforeAll(async () => {
  as = await startFakeAuthServer();
});
afterAll(async () => {
  await as.close();
  await cleanup();
});

const COUNT = 1_000;

describe('1,000 expired sessions called at once in one process', () => {
  it('PostgreSQL with a pool of 2 connections: every call gets a token, 1,000 refreshes, no refresh token sent twice', async () => {
    const storeConfig = { ...(stores[3]?.[1]('') as { kind: 'postgres'; table: string }), poolSize: 2 };
    expect(storeConfig.kind).toBe('postgres');
    const store = postgresStore({ connectionString: DATABASE_URL }, { table: storeConfig.table });
    const client = { clientId: as.clientId, clientSecret: as.clientSecret };
    const manager = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client });
    for (let i = 0; i < COUNT; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => manager.adopt(`m${i + j}`, as.issue({ expiresIn: 0 }))));
    }
    as.resetCounts();
    as.latencyMs = 150;
    const go = join(mkdtempSync(join(tmpdir(), 'tk-many-')), 'go');
    const worker = startChild('many-worker.ts', [
      JSON.stringify({ store: storeConfig, tokenEndpoint: as.tokenEndpoint, client, count: COUNT, go, tokens: true }),
    ]);
    await waitForOutput(worker.child, 'ready', 60_000);
    writeFileSync(go, '');
    const result = await worker.done;
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout.trim().split('\n').pop() as string) as {
      ok: number;
      failed: Record<string, number>;
      tokens: (string | null)[];
      ms: number;
    };
    expect(out.failed).toEqual({});
    expect(out.ok).toBe(COUNT);
    expect(as.counts.refresh).toBe(COUNT);
    expect(as.counts.reuseDetected + as.counts.concurrentReuse + as.counts.graceReuse).toBe(0);
    expect(out.tokens.every((t) => t !== null && as.isActive(t))).toBe(true);
    console.log(`1,000 expired sessions, one process, PostgreSQL pool of 2: ${Math.round(out.ms)} ms`);
    await store.close();
  }, 180_000);
});
