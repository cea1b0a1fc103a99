// Sessions that never stall, with real processes on every shared store: a renewal slower than
// its lease stays exclusive (the heartbeat), and a holder killed in the middle of a renewal
// frees the session within one short lease (at once on one host for the file and SQLite stores).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
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
beforeEach(() => {
  as.resetCounts();
  as.latencyMs = 0;
  as.refreshGraceMs = 0;
  as.dropAbandoned = false;
});

const client = () => ({ clientId: as.clientId, clientSecret: as.clientSecret });

async function expiredSession(label: string) {
  const dir = join(mkdtempSync(join(tmpdir(), `tk-stall-${label.replace(/\W/g, '')}-`)), 'store');
  return { dir };
}

describe('a renewal slower than its lease', () => {
  for (const [label, configFor] of stores) {
    it(`${label}: the holder's heartbeat keeps it exclusive: 4 processes, a server 5 leases slow, 1 refresh`, async () => {
      const { dir } = await expiredSession(label);
      const storeConfig = configFor(dir);
      const store = openStore(storeConfig);
      const manager = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client: client() });
      await manager.adopt('slow', as.issue({ expiresIn: 0 }));
      as.resetCounts();
      as.latencyMs = 3_000; // the lease is 600 ms: only a heartbeat keeps it
      as.refreshGraceMs = 30_000;
      const config = JSON.stringify({
        dir,
        store: storeConfig,
        tokenEndpoint: as.tokenEndpoint,
        client: client(),
        leaseMs: 600,
        timeoutMs: 8_000,
        // A process that took the lock over would wait only 100 ms for the holder's write, then
        // send the same refresh token within the grace window: a second refresh the server
        // accepts and counts (graceReuse). Only the heartbeat keeps that from happening.
        rotationGraceMs: 30_000,
        undecidedWaitMs: 100,
      });
      const children = Array.from({ length: 4 }, () =>
        startChild('session-worker.ts', ['storm', config, 'slow', '20']),
      );
      await Promise.all(children.map((c) => waitForOutput(c.child, 'ready')));
      writeFileSync(`${dir}.go`, '');
      const results = await Promise.all(children.map((c) => c.done));
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      expect(as.counts.refresh).toBe(1);
      expect(as.counts.graceReuse).toBe(0);
      expect(as.counts.concurrentReuse).toBe(0);
      expect(as.counts.reuseDetected).toBe(0);
      const tokens = new Set(results.flatMap((r) => JSON.parse(r.stdout.trim().split('\n').pop() as string).tokens));
      expect(tokens.size).toBe(1);
      expect(as.isActive([...tokens][0] as string)).toBe(true);
      await store.close();
    }, 60_000);
  }
});

describe('a holder killed while its refresh is at the server (answer lost)', () => {
  for (const [label, configFor] of stores) {
    const local = label === 'file store' || label === 'SQLite';
    it(`${label}: with the server's grace window, the next process recovers the session ${local ? 'at once (the holder is seen to be gone)' : 'within 5 s (one lease)'}, with the default undecidedWaitMs`, async () => {
      const { dir } = await expiredSession(label);
      const storeConfig = configFor(dir);
      const store = openStore(storeConfig);
      const manager = new SessionManager({
        store,
        tokenEndpoint: as.tokenEndpoint,
        client: client(),
        // The server's reuse window (Okta, Auth0, Hydra, Keycloak have one). undecidedWaitMs stays
        // at its default (3 s): within the window a marked renewal is taken over at once.
        rotationGraceMs: 30_000,
      });
      await manager.adopt('killed', as.issue({ expiresIn: 0 }));
      as.resetCounts();
      as.refreshGraceMs = 30_000;
      as.latencyMs = 1_000;
      // The holder uses the default lease (5 s); it sends its refresh and is killed before the answer.
      const config = JSON.stringify({ dir, store: storeConfig, tokenEndpoint: as.tokenEndpoint, client: client() });
      const holder = startChild('session-worker.ts', ['token', config, 'killed']);
      for (let i = 0; i < 500 && as.counts.received === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(as.counts.received).toBe(1);
      holder.child.kill('SIGKILL');
      expect((await holder.done).signal).toBe('SIGKILL');
      as.latencyMs = 0;
      await new Promise((r) => setTimeout(r, 1_100)); // the server rotated; the answer went nowhere
      expect(as.counts.refresh).toBe(1);

      const started = Date.now();
      const token = await (await manager.get('killed'))?.getAccessToken();
      const waited = Date.now() - started;
      expect(as.isActive(token as string)).toBe(true);
      expect(as.counts.graceReuse).toBe(1); // the same refresh token, accepted within the window
      expect(as.counts.reuseDetected).toBe(0);
      // The 5 s lease counts from the holder's last heartbeat (Redis, PostgreSQL), then a poll;
      // the file and SQLite stores see the holder is gone. Before, the marked renewal then waited
      // undecidedWaitMs (3 s) more: Redis took 7.2-8.0 s. Measured here on a quiet machine: about
      // 4.2 s (the figure is the stall benchmark's); the bound leaves a busy machine 1.5 s over the
      // lease and still fails the old lease-plus-undecidedWaitMs wait.
      expect(waited).toBeLessThan(local ? 1_500 : 6_500);
      console.log(`recovery after a killed holder, ${label}: ${waited} ms`);
      await store.close();
    }, 60_000);
  }
});
