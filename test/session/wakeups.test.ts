// Waiters woken by events, not polling (Redis pub/sub, PostgreSQL NOTIFY, directory events for
// the file store): a process waiting to renew a session
// that another process renewed takes up the new token as soon as it is announced, without
// queueing for the lock; a released lock wakes its waiters; a lost announcement or a Redis
// restart only means polling until the lock is free.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { fileStore } from '../../src/exports/file.js';
import { postgresStore } from '../../src/exports/postgres.js';
import { redisStore } from '../../src/exports/redis.js';
import { type Lease, type LockOptions, SessionManager, type Store } from '../../src/index.js';
import { startPrivateRedis } from '../helpers/private-redis.js';
import { DATABASE_URL, deleteRedisPrefixes, REDIS_URL, runId } from '../helpers/services.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

const fx = useFakeAuthServer();
const namespaces: string[] = [];
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 20 });
afterAll(async () => {
  await deleteRedisPrefixes(namespaces.map((n) => `${n}:`));
  for (const n of namespaces) await pool.query(`DROP TABLE IF EXISTS "${n}_records", "${n}_records_locks"`);
  await pool.end();
});

function namespace(): string {
  const ns = runId();
  namespaces.push(ns);
  return ns;
}

/** The store, counting the locks it handed out. */
function counting(inner: Store): Store & { locks: number } {
  const counted = {
    locks: 0,
    name: inner.name,
    capabilities: inner.capabilities,
    get: (k: string) => inner.get(k),
    set: inner.set.bind(inner),
    delete: inner.delete.bind(inner),
    keys: (p?: string) => inner.keys(p),
    watch: inner.watch?.bind(inner),
    close: () => inner.close(),
    async lock(k: string, o?: LockOptions): Promise<Lease> {
      const lease = await inner.lock(k, o);
      counted.locks++;
      return lease;
    },
  };
  return counted;
}

const folder = mkdtempSync(join(tmpdir(), 'tk-wake-'));
const backends: [string, (ns: string) => Store][] = [
  ['file store (directory events)', (ns) => fileStore({ path: join(folder, ns) })],
  ['Redis', (ns) => redisStore({ url: REDIS_URL, namespace: ns })],
  ['PostgreSQL', (ns) => postgresStore({ pool, namespace: ns })],
];

describe.each(backends)('%s announcements', (_label, open) => {
  it("processes waiting for the lock take up another process's renewed token when it is written, instead of queueing for the lock", async () => {
    const ns = namespace();
    const a = new SessionManager(fx.options({ store: open(ns) }));
    await a.adopt('shared', fx.as.issue({ expiresIn: 0 }));
    fx.as.resetCounts();
    fx.as.latencyMs = 600;
    const stores = Array.from({ length: 5 }, () => counting(open(ns)));
    const waiters = stores.map((store) => new SessionManager(fx.options({ store })));
    const sessions = await Promise.all(waiters.map((m) => m.get('shared')));
    const first = (await a.get('shared'))?.getAccessToken() as Promise<string>;
    while (fx.as.counts.received === 0) await new Promise((r) => setTimeout(r, 5));
    // A holds the lock and its refresh is at the server: five other processes ask now.
    const tokens = await Promise.all([first, ...sessions.map((s) => s?.getAccessToken() as Promise<string>)]);
    expect(new Set(tokens).size).toBe(1);
    expect(fx.as.counts.refresh).toBe(1);
    // Queueing, each would take the lock in turn to read the record again (5 locks). Told of the
    // write, they read it at once; a poll may still win the race with the announcement now and
    // then (on PostgreSQL the release and the news are one message), so allow two.
    const locks = stores.reduce((n, s) => n + s.locks, 0);
    expect(locks).toBeLessThanOrEqual(2);
    await Promise.all([a.store.close(), ...stores.map((s) => s.close())]);
  });

  it('a released lock wakes its waiters at once, however long they waited', async () => {
    const store = open(namespace());
    try {
      for (let trial = 0; trial < 3; trial++) {
        const held = await store.lock('wake');
        const waiting = store.lock('wake', { waitMs: 10_000 }).then((lease) => ({ lease, at: Date.now() }));
        await new Promise((r) => setTimeout(r, 1_500)); // long enough for the poll to back off to 200 ms
        const releasedAt = Date.now();
        await held.release();
        const { lease, at } = await waiting;
        // Polling alone would take 200 to 400 ms here; the announcement takes a round trip.
        expect(at - releasedAt).toBeLessThan(150);
        await lease.release();
      }
    } finally {
      await store.close();
    }
  });
});

describe('Redis announcements lost', () => {
  it('a lost announcement (a lock freed without one) only means polling: the waiter still gets it', async () => {
    const ns = namespace();
    const store = redisStore({ url: REDIS_URL, namespace: ns });
    const raw = new Redis(REDIS_URL);
    try {
      await store.lock('lost', { leaseMs: 30_000 });
      const waiting = store.lock('lost', { waitMs: 10_000 });
      await new Promise((r) => setTimeout(r, 300));
      await raw.del(`${ns}:{lost}:l`); // freed, and nobody told
      const started = Date.now();
      await (await waiting).release();
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await raw.quit();
      await store.close();
    }
  });

  it('a Redis restart while a waiter waits: it reconnects, and gets the lock once it is free', async () => {
    const server = await startPrivateRedis('aof');
    const holder = redisStore({ url: server.url, namespace: 'restart' });
    const waiter = redisStore({ url: server.url, namespace: 'restart' });
    try {
      const held = await holder.lock('k', { leaseMs: 2_000 });
      await waiter.get('warm'); // connected, subscriber too once it waits
      const waiting = waiter.lock('k', { waitMs: 20_000 });
      await new Promise((r) => setTimeout(r, 300));
      await server.restart(500); // the lock survives (AOF); its lease ends by Redis's clock
      await held.release().catch(() => {}); // may fail while reconnecting: the lease ends anyway
      const lease = await waiting;
      expect(lease.key).toBe('k');
      await lease.release();
    } finally {
      await Promise.all([holder.close(), waiter.close()]);
      await server.stop();
    }
  }, 30_000);
});
