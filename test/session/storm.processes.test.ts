import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionManager } from '../../src/index.js';
import { startChild, waitForOutput } from '../helpers/child.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';
import { openStore, sharedStores } from '../helpers/store-config.js';

let as: FakeAuthServer;
const { stores, cleanup } = sharedStores();
beforeAll(async () => {
  as = await startFakeAuthServer();
});
afterAll(async () => {
  await as.close();
  await cleanup();
});

describe('refresh storm across real processes', () => {
  for (const [label, configFor] of stores) {
    it(`8 processes x 200 concurrent getAccessToken() on one expired session, ${label}: exactly 1 refresh`, async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'tk-storm-')), 'store');
      const storeConfig = configFor(dir);
      const store = openStore(storeConfig);
      const client = { clientId: as.clientId, clientSecret: as.clientSecret };
      const manager = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client });
      const old = as.issue({ expiresIn: 0 });
      await manager.adopt('shared', old);
      as.resetCounts();
      as.latencyMs = 100; // a slow server widens the window in which the processes race

      const config = JSON.stringify({ dir, store: storeConfig, tokenEndpoint: as.tokenEndpoint, client });
      const children = Array.from({ length: 8 }, () =>
        startChild('session-worker.ts', ['storm', config, 'shared', '200']),
      );
      // Every process holds the expired session in memory before any of them starts.
      await Promise.all(children.map((c) => waitForOutput(c.child, 'ready')));
      writeFileSync(`${dir}.go`, '');
      const results = await Promise.all(children.map((c) => c.done));
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      const perProcess = results.map((r) => JSON.parse(r.stdout.trim().split('\n').pop() as string).tokens as string[]);

      expect(as.counts.refresh).toBe(1);
      expect(as.counts.invalidGrant).toBe(0);
      expect(as.counts.reuseDetected).toBe(0);
      const stored = await manager.get('shared');
      const newToken = stored?.tokens.accessToken as string;
      expect(newToken).not.toBe(old.access_token);
      expect(as.isActive(newToken)).toBe(true);
      for (const tokens of perProcess) expect(tokens).toEqual([newToken]); // all 1,600 callers
      expect(stored?.tokens.refreshToken).not.toBe(old.refresh_token);
      await store.close();
    }, 90_000);
  }
});
