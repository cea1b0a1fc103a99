// Exactly once even when the store fails: the lock that cannot vanish under its holder, and
// rotated tokens that survive a failed write. Real processes, real PostgreSQL and Redis.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/exports/postgres.js';
import { redisStore } from '../../src/exports/redis.js';
import { isTokenkeeperError, memoryStore, SessionManager, type Store } from '../../src/index.js';
import { startChild } from '../helpers/child.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';
import { startPrivateRedis } from '../helpers/private-redis.js';
import { DATABASE_URL, runId } from '../helpers/services.js';

let as: FakeAuthServer;
const admin = new pg.Pool({ connectionString: DATABASE_URL });
const tables: string[] = [];
beforeAll(async () => {
  as = await startFakeAuthServer();
});
afterAll(async () => {
  await as.close();
  for (const t of tables) await admin.query(`DROP TABLE IF EXISTS "${t}", "${t}_locks"`);
  await admin.end();
});
beforeEach(() => {
  as.resetCounts();
  as.latencyMs = 0;
  as.failNext(0);
});

const client = () => ({ clientId: as.clientId, clientSecret: as.clientSecret });
const until = async (check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A store whose writes fail while `failing` is true (the writes of rotated tokens only, if asked). */
function flaky(inner: Store) {
  const state = { failing: false, onlyTokenWrites: true, refused: 0 };
  const store: Store = {
    name: `flaky ${inner.name}`,
    capabilities: inner.capabilities,
    get: (k) => inner.get(k),
    delete: (k, o) => inner.delete(k, o),
    keys: (p) => inner.keys(p),
    lock: (k, o) => inner.lock(k, o),
    close: () => inner.close(),
    async set(k, v, o) {
      if (state.failing && (!state.onlyTokenWrites || v.renewing === undefined)) {
        state.refused++;
        const { TokenkeeperError } = await import('../../src/index.js');
        throw new TokenkeeperError('TOKENKEEPER_STORE_UNAVAILABLE', 'the store is down (test)');
      }
      return inner.set(k, v, o);
    },
  };
  return { store, state };
}

describe('rotated tokens survive a failed store write', () => {
  it('keeps the new tokens, serves them, writes them when the store is back, and never reuses the old refresh token', async () => {
    const { store, state } = flaky(memoryStore());
    const manager = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client: client() });
    const errors: unknown[] = [];
    manager.on('error', ({ error }) => errors.push(error));
    const old = as.issue({ expiresIn: 0 });
    const session = await manager.adopt('u', old);
    state.failing = true;
    const token = await session.getAccessToken(); // the write after the refresh fails
    expect(as.isActive(token)).toBe(true);
    expect(as.counts.refresh).toBe(1);
    expect(state.refused).toBeGreaterThan(0);
    expect(errors.some((e) => isTokenkeeperError(e, 'TOKENKEEPER_STORE_UNAVAILABLE'))).toBe(true);
    // Its own callers are served from memory meanwhile, without another refresh.
    expect(await Promise.all([session.getAccessToken(), session.getAccessToken()])).toEqual([token, token]);
    // Another process sharing the store must not refresh meanwhile: it waits for the lock the saver holds.
    const other = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client: client() });
    const waiting = (await other.get('u'))?.getAccessToken();
    await new Promise((r) => setTimeout(r, 300));
    expect(as.counts.refresh).toBe(1);
    state.failing = false;
    expect(await waiting).toBe(token);
    const stored = await manager.get('u');
    expect(stored?.tokens.refreshToken).not.toBe(old.refresh_token);
    // The next refresh uses the rotated token: the server sees no reuse.
    await (await manager.get('u'))?.getAccessToken({ forceRefresh: true });
    expect(as.counts.refresh).toBe(2);
    expect(as.counts.reuseDetected).toBe(0);
    expect(as.counts.invalidGrant).toBe(0);
  });

  it('a forced renewal while rotated tokens wait to be stored waits at most lock.waitMs, then a typed error', async () => {
    const { store, state } = flaky(memoryStore());
    const manager = new SessionManager({
      store,
      tokenEndpoint: as.tokenEndpoint,
      client: client(),
      lock: { waitMs: 300 },
    });
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    state.failing = true;
    const token = await session.getAccessToken();
    const started = Date.now();
    const err = await session.getAccessToken({ forceRefresh: true }).catch((e) => e);
    expect(err.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(err.message).toContain('not stored yet');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(as.counts.refresh).toBe(1); // no second rotation before the first is stored
    expect(await session.getAccessToken()).toBe(token); // the unsaved tokens are still served
    state.failing = false;
    await manager.close();
    await store.close(); // closing the store ends the saver
  });

  it('with Redis (AOF) restarted while the refresh answer is in flight, the session is kept', async () => {
    const redis = await startPrivateRedis('aof');
    const store = redisStore({ url: redis.url, prefix: `${runId()}:` });
    const manager = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client: client() });
    const errors: unknown[] = [];
    manager.on('error', ({ error }) => errors.push(error));
    const old = as.issue({ expiresIn: 0 });
    const session = await manager.adopt('u', old);
    as.latencyMs = 600;
    const pending = session.getAccessToken();
    await until(() => as.counts.received === 1);
    // Down when the answer arrives, for longer than the store waits for a reconnect (2 s).
    await redis.restart(3_000);
    const token = await pending;
    expect(as.isActive(token)).toBe(true);
    expect(errors.length).toBeGreaterThan(0); // the refused write was reported
    as.latencyMs = 0;
    // The saver lands the write once Redis answers again.
    for (let i = 0; i < 100; i++) {
      const stored = await manager.get('u').catch(() => undefined);
      if (stored && stored.tokens.refreshToken !== old.refresh_token) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const fresh = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client: client() });
    const restored = await fresh.get('u');
    expect(restored?.tokens.refreshToken).not.toBe(old.refresh_token);
    await restored?.getAccessToken({ forceRefresh: true });
    expect(as.counts.refresh).toBe(2);
    expect(as.counts.reuseDetected).toBe(0);
    await store.close();
    await redis.stop();
  }, 30_000);
});

describe('PostgreSQL: a lock cannot vanish under its holder', () => {
  it("terminating the holder's backends mid-refresh lets no second process refresh: one refresh, session kept", async () => {
    const table = runId();
    tables.push(table);
    const app = `${table}_a`;
    const withApp = `${DATABASE_URL}${DATABASE_URL.includes('?') ? '&' : '?'}application_name=${app}`;
    const setup = postgresStore({ connectionString: DATABASE_URL }, { table });
    const manager = new SessionManager({ store: setup, tokenEndpoint: as.tokenEndpoint, client: client() });
    await manager.adopt('u', as.issue({ expiresIn: 0 }));
    as.resetCounts();
    as.latencyMs = 1_500;
    const dir = join(mkdtempSync(join(tmpdir(), 'tk-pgfault-')), 'x');
    const config = (url: string) =>
      JSON.stringify({
        dir,
        store: { kind: 'postgres', connectionString: url, table },
        tokenEndpoint: as.tokenEndpoint,
        client: client(),
      });
    const a = startChild('session-worker.ts', ['token', config(withApp), 'u']);
    await until(() => as.counts.received === 1);
    const killed = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
      [app],
    );
    expect(killed.rowCount).toBeGreaterThan(0);
    const b = startChild('session-worker.ts', ['token', config(DATABASE_URL), 'u']);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.stderr).toBe('');
    expect(rb.stderr).toBe('');
    const ta = JSON.parse(ra.stdout).token;
    expect(JSON.parse(rb.stdout).token).toBe(ta);
    expect(as.isActive(ta)).toBe(true);
    expect(as.counts.refresh).toBe(1);
    expect(as.counts.reuseDetected).toBe(0);
    expect((await manager.get('u'))?.status).toBe('active');
    await setup.close();
  }, 30_000);
});
