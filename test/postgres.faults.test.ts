import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresMigrationSql, postgresStore } from '../src/exports/postgres.js';
import { lockOfKilledHolderFrees } from './helpers/dead-holder.js';
import { rejection } from './helpers/errors.js';
import { unusedPort } from './helpers/fake-as.js';
import { DATABASE_URL, runId } from './helpers/services.js';

const admin = new pg.Pool({ connectionString: DATABASE_URL });
const tables: string[] = [];
afterAll(async () => {
  for (const t of tables) await admin.query(`DROP TABLE IF EXISTS "${t}", "${t}_locks"`);
  await admin.end();
});
const table = () => {
  const t = runId();
  tables.push(t);
  return t;
};
const withAppName = (name: string) =>
  `${DATABASE_URL}${DATABASE_URL.includes('?') ? '&' : '?'}application_name=${name}`;
const terminate = (appName: string) =>
  admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName]);

describe('postgresStore faults', () => {
  it('recovers by itself after pg_terminate_backend of its connections, losing no record', async () => {
    const app = table();
    const store = postgresStore({ connectionString: withAppName(app) }, { table: app });
    for (let i = 0; i < 20; i++) await store.set(`k${i}`, { i });
    const killed = await terminate(app);
    expect(killed.rowCount).toBeGreaterThan(0);
    // Reads retry once on a fresh connection; writes may report the broken one, then work.
    for (let i = 0; i < 20; i++) expect((await store.get(`k${i}`))?.value).toEqual({ i });
    await terminate(app);
    let written = false;
    for (let i = 0; i < 5 && !written; i++) {
      written = await store.set('after', { ok: true }).then(
        () => true,
        (e) => {
          expect(e.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
          return false;
        },
      );
    }
    expect(written).toBe(true);
    const keys: string[] = [];
    for await (const k of store.keys()) keys.push(k);
    expect(keys).toHaveLength(21);
    await store.close();
  }, 30_000);

  it('keeps a lock for its whole lease when the connection that took it is terminated', async () => {
    const app = table();
    const store = postgresStore({ connectionString: withAppName(app) }, { table: app });
    const other = postgresStore({ connectionString: DATABASE_URL }, { table: app });
    const lease = await store.lock('k', { leaseMs: 1_500 });
    expect((await terminate(app)).rowCount).toBeGreaterThan(0);
    // An advisory lock would have ended with the connection, under a holder still at work.
    expect((await rejection(other.lock('k', { waitMs: 300 }))).code).toBe('TOKENKEEPER_LOCK_TIMEOUT');
    // The holder still holds it: it can extend it over a fresh connection, and release it.
    expect(await lease.extend(2_000)).toBe(true);
    expect((await rejection(other.lock('k', { waitMs: 300 }))).code).toBe('TOKENKEEPER_LOCK_TIMEOUT');
    await lease.release();
    await (await other.lock('k', { waitMs: 0 })).release();
    // Left alone, it ends with its lease.
    await store.lock('k2', { leaseMs: 300 });
    await terminate(app);
    const started = Date.now();
    await (await other.lock('k2', { waitMs: 5_000 })).release();
    expect(Date.now() - started).toBeLessThan(1_500);
    await store.close();
    await other.close();
  }, 30_000);

  it('frees the lock of a process killed with SIGKILL while holding it', async () => {
    const t = table();
    const store = postgresStore({ connectionString: DATABASE_URL }, { table: t });
    await store.get('warm'); // create the table before the child races to
    await lockOfKilledHolderFrees(store, { kind: 'postgres', connectionString: DATABASE_URL, table: t }, 1_000);
    await store.close();
  }, 60_000);

  it('reports a row edited by hand into invalid JSON, naming the key, while others stay readable', async () => {
    const t = table();
    const store = postgresStore({ connectionString: DATABASE_URL }, { table: t });
    await store.set('good', { a: 1 });
    await store.set('bad', { a: 2 });
    await admin.query(`UPDATE "${t}" SET value = $1 WHERE key = $2`, ['{"a": 2', 'bad']);
    const err = await rejection(store.get('bad'));
    expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(err.key).toBe('bad');
    expect(err.message).toContain(t);
    expect((await store.get('good'))?.value).toEqual({ a: 1 });
    // Never written over (what is left in it may still be recovered by hand); a delete repairs it.
    expect((await rejection(store.set('bad', { a: 3 }))).code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect((await admin.query(`SELECT value FROM "${t}" WHERE key = 'bad'`)).rows[0].value).toBe('{"a": 2');
    expect(await store.delete('bad')).toBe(true);
    await store.set('bad', { a: 3 });
    expect((await store.get('bad'))?.value).toEqual({ a: 3 });
    await store.close();
  });

  it('purges expired rows cheaply, and reads ignore them before that', async () => {
    const t = table();
    const store = postgresStore({ connectionString: DATABASE_URL }, { table: t });
    await store.set('short', { a: 1 }, { ttlMs: 50 });
    await store.set('long', { a: 2 });
    await new Promise((r) => setTimeout(r, 100));
    expect(await store.get('short')).toBeUndefined();
    expect(await store.purgeExpired()).toBe(1);
    expect((await admin.query(`SELECT count(*)::int AS n FROM "${t}"`)).rows[0].n).toBe(1);
    await store.close();
  });

  it('works with a table created by the documented migration and createTable: false', async () => {
    const t = table();
    await admin.query(postgresMigrationSql({ table: t }));
    const store = postgresStore({ pool: admin }, { table: t, createTable: false });
    await store.set('k', { a: 1 });
    expect((await store.get('k'))?.value).toEqual({ a: 1 });
    await store.close();
  });

  it('gives a clear error within a bounded time when PostgreSQL is unreachable', async () => {
    const store = postgresStore({ connectionString: `postgres://postgres@127.0.0.1:${await unusedPort()}/test` });
    const started = Date.now();
    const err = await rejection(store.get('k'));
    expect(err.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(err.message).toContain('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(6_000);
    await store.close();
  });

  it('refuses bad options and identifiers that could inject SQL', () => {
    expect(() => postgresStore({} as never)).toThrow(/pool/);
    for (const t of ['x"; DROP TABLE y; --', 'a b', '', '1abc']) {
      expect(() => postgresStore({ pool: admin }, { table: t })).toThrow(/table or schema name/);
    }
    // Its lock table appends _locks, which must fit PostgreSQL's 63 characters too.
    expect(() => postgresStore({ pool: admin }, { table: 'a'.repeat(58) })).toThrow(/at most 57 characters/);
    expect(() => postgresStore({ pool: admin }, { table: 'a'.repeat(57) })).not.toThrow();
    expect(() => postgresStore({ pool: admin }, { schema: 'public; --' })).toThrow(/table or schema name/);
  });
});

describe('postgresStore under a failover storm (backends terminated every 50 ms)', () => {
  it('no process dies, every failure is typed, and no listener count grows', async () => {
    const { startFakeAuthServer } = await import('./helpers/fake-as.js');
    const { startChild, waitForOutput } = await import('./helpers/child.js');
    const { SessionManager } = await import('../src/index.js');
    const as = await startFakeAuthServer();
    const t = table();
    const app = `${t}_churn`;
    const setupStore = postgresStore({ connectionString: DATABASE_URL }, { table: t });
    const manager = new SessionManager({
      store: setupStore,
      tokenEndpoint: as.tokenEndpoint,
      client: { clientId: as.clientId, clientSecret: as.clientSecret },
    });
    await manager.adopt('churn', as.issue());
    const client = JSON.stringify({ clientId: as.clientId, clientSecret: as.clientSecret });
    const children = Array.from({ length: 4 }, () =>
      startChild('pg-churn.ts', [withAppName(app), t, '45000', as.tokenEndpoint, client]),
    );
    await Promise.all(children.map((c) => waitForOutput(c.child, 'ready')));
    // The storm is counted in rounds and terminated backends, not in wall-clock time: on a loaded
    // machine a timed storm could end before the children had done anything at all.
    let terminated = 0;
    for (let round = 0; (round < 40 || terminated <= 20) && round < 2_000; round++) {
      terminated += (await terminate(app)).rowCount ?? 0;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const c of children) c.child.kill('SIGUSR2');
    const results = await Promise.all(children.map((c) => c.done));
    expect(terminated).toBeGreaterThan(20);
    for (const r of results) {
      expect(r.signal).toBeNull();
      expect(r.stderr).not.toContain("Unhandled 'error' event");
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
      expect(out.untyped).toEqual([]);
      expect(out.warnings).toEqual([]); // no MaxListenersExceededWarning
      expect(out.poolListeners).toBe(1);
      expect(out.stormOver).toBe(true); // ended by the test, not by its time bound
      expect(out.ops).toBeGreaterThan(0);
    }
    await setupStore.close();
    await as.close();
  }, 60_000);
});
