import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStoreUrl } from '../../src/cli/stores.js';
import { encryptedStore } from '../../src/codec/encrypted.js';
import { redisStore } from '../../src/exports/redis.js';
import { SessionManager, type Store } from '../../src/index.js';
import { type ChildResult, startChild } from '../helpers/child.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';
import { DATABASE_URL, REDIS_URL, runId } from '../helpers/services.js';

// The `tokenkeeper` command line, run as users run it: a real process per command, against
// file, SQLite, Redis and PostgreSQL stores, its --json output parsed.

const dirs: string[] = [];
let as: FakeAuthServer;
const redisNamespaces: string[] = [];
const KEY1 = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
const KEY2 = `k2:${Buffer.alloc(32, 2).toString('base64')}`;

beforeAll(async () => {
  as = await startFakeAuthServer();
});
afterAll(async () => {
  await as?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const namespace of redisNamespaces) {
    const store = redisStore({ url: REDIS_URL, namespace });
    const keys: string[] = [];
    for await (const k of store.keys()) keys.push(k);
    for (const k of keys) await store.delete(k, { force: true });
    await store.close();
  }
  const pool = new pg.Pool({ connectionString: DATABASE_URL });
  for (const ns of pgNamespaces) await pool.query(`DROP TABLE IF EXISTS "${ns}_records"`);
  await pool.end();
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tk-cli-'));
  dirs.push(d);
  return d;
}

/** Runs `tokenkeeper ...args` to the end. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildResult> {
  return startChild('../../src/cli/main.ts', args, { env }).done;
}

function json<T>(r: ChildResult): T {
  return JSON.parse(r.stdout.trim()) as T;
}

/** A store URL in a place of its own for one test. */
function place(kind: string): string {
  const ns = `cli_${runId().replace(/\W/g, '_')}`.slice(0, 40);
  switch (kind) {
    case 'file':
      return `file:${join(tmp(), 'store')}`;
    case 'sqlite':
      return `sqlite:${join(tmp(), 'sessions.db')}`;
    case 'redis':
      redisNamespaces.push(ns);
      return `${REDIS_URL}?namespace=${ns}`;
    default:
      pgNamespaces.push(ns);
      return `${DATABASE_URL}?namespace=${ns}`;
  }
}
const pgNamespaces: string[] = [];

async function seed(store: Store, ids: string[]): Promise<string[]> {
  const manager = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client: { clientId: as.clientId } });
  const tokens: string[] = [];
  for (const id of ids) {
    const body = as.issue();
    tokens.push(body.access_token, body.refresh_token as string);
    await manager.adopt(id, body);
  }
  return tokens;
}

describe.each(['file', 'sqlite', 'redis', 'postgres'])('sessions list, show, rm, clear on the %s store', (kind) => {
  it('shows status, grant and expiry, never a token; removes one, then all', async () => {
    const url = place(kind);
    const store = await openStoreUrl(url);
    const secrets = await seed(store, ['alice', 'bob', 'carol']);
    await store.close();

    const list = await cli(['sessions', 'list', '--store', url, '--json']);
    expect(list.code, list.stderr).toBe(0);
    const rows = json<{ id: string; status: string; grant: string; expiresAt: string; refreshable: boolean }[]>(list);
    expect(rows.map((r) => r.id)).toEqual(['alice', 'bob', 'carol']);
    expect(rows[0]).toMatchObject({ status: 'active', grant: 'adopt', refreshable: true });
    expect(Number.isFinite(Date.parse(rows[0]?.expiresAt as string))).toBe(true);
    for (const secret of secrets) expect(list.stdout).not.toContain(secret);

    const text = await cli(['sessions', 'list', '--store', url]);
    expect(text.stdout).toMatch(/^id\s+status\s+grant/);
    expect(text.stdout).toContain('alice');

    const show = await cli(['sessions', 'show', 'bob', '--store', url, '--json']);
    expect(json<{ id: string }>(show).id).toBe('bob');
    for (const secret of secrets) expect(show.stdout).not.toContain(secret);
    const missing = await cli(['sessions', 'show', 'nobody', '--store', url, '--json']);
    expect(missing.code).toBe(1);

    const rm = await cli(['sessions', 'rm', 'bob', '--store', url, '--json']);
    expect(json(rm)).toEqual({ removed: true });
    const clear = await cli(['sessions', 'clear', '--yes', '--store', url, '--json']);
    expect(json(clear)).toEqual({ removed: 2 });
    expect(json(await cli(['sessions', 'list', '--store', url, '--json']))).toEqual([]);
  }, 60_000);
});

describe('sessions show after a renewal', () => {
  it('tells when and by which process the session was last renewed', async () => {
    const url = place('file');
    const store = await openStoreUrl(url);
    const manager = new SessionManager({
      store,
      tokenEndpoint: as.tokenEndpoint,
      client: { clientId: as.clientId, clientSecret: as.clientSecret },
    });
    await manager.adopt('alice', as.issue());
    await (await manager.get('alice'))?.getAccessToken({ forceRefresh: true });
    await store.close();
    const row = json<{ lastRenewedAt: string; lastRenewedBy: string }>(
      await cli(['sessions', 'show', 'alice', '--store', url, '--json']),
    );
    expect(Date.now() - Date.parse(row.lastRenewedAt)).toBeLessThan(60_000);
    expect(row.lastRenewedBy).toBe(`${hostname()}/pid ${process.pid}`); // the host even without HOSTNAME exported
  }, 30_000);
});

describe('migrate', () => {
  it('moves 100,000 sessions from SQLite to Redis, interrupted part way and resumed: nothing lost or duplicated', async () => {
    const COUNT = 100_000;
    const dir = tmp();
    const from = `sqlite:${join(dir, 'big.db')}`;
    // Open once through the store (it makes its tables), then fill them in one transaction.
    const made = await openStoreUrl(from);
    await made.get('tokenkeeper:none');
    await made.close();
    const db = new Database(join(dir, 'big.db'));
    const insert = db.prepare(
      'INSERT INTO tokenkeeper_records (key, value, version, expires_at) VALUES (?, ?, 1, NULL)',
    );
    db.transaction(() => {
      for (let i = 0; i < COUNT; i++)
        insert.run(`tokenkeeper:s:user-${i}`, JSON.stringify({ n: i, updatedAt: 1_000 + i }));
    })();
    db.close();
    const to = place('redis');
    const target = await openStoreUrl(to);
    const count = async () => {
      let n = 0;
      for await (const _ of target.keys('tokenkeeper:')) n++;
      return n;
    };

    const first = startChild('../../src/cli/main.ts', ['migrate', '--from', from, '--to', to, '--json']);
    const deadline = Date.now() + 60_000;
    let copied = 0;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      copied = await count();
      if (copied >= COUNT / 4) break;
    }
    first.child.kill('SIGKILL');
    await first.done;
    const interruptedAt = await count();
    expect(interruptedAt).toBeGreaterThan(0);
    expect(interruptedAt).toBeLessThan(COUNT);

    const resumed = await cli(['migrate', '--from', from, '--to', to, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const result = json<{ keys: number; copied: number; same: number; failed: number }>(resumed);
    expect(result.keys).toBe(COUNT);
    expect(result.failed).toBe(0);
    expect(result.copied + result.same).toBe(COUNT);
    expect(result.same).toBeGreaterThanOrEqual(interruptedAt - 64); // what the first run had written
    // Every record once, with its value.
    const seen = new Set<string>();
    for await (const key of target.keys('tokenkeeper:')) seen.add(key);
    expect(seen.size).toBe(COUNT);
    for (let i = 0; i < COUNT; i += 997) {
      expect((await target.get(`tokenkeeper:s:user-${i}`))?.value).toEqual({ n: i, updatedAt: 1_000 + i });
    }
    // Run again: nothing to do.
    const again = json<{ copied: number; same: number }>(await cli(['migrate', '--from', from, '--to', to, '--json']));
    expect(again).toMatchObject({ copied: 0, same: COUNT });
    await target.close();
  }, 180_000);

  it('never writes over a newer record in the target', async () => {
    const from = place('file');
    const to = place('sqlite');
    const source = await openStoreUrl(from);
    const target = await openStoreUrl(to);
    await source.set('tokenkeeper:s:a', { updatedAt: 100, v: 'old' });
    await source.set('tokenkeeper:s:b', { updatedAt: 300, v: 'new' });
    await target.set('tokenkeeper:s:a', { updatedAt: 200, v: 'kept' });
    await target.set('tokenkeeper:s:b', { updatedAt: 100, v: 'replaced' });
    await source.close();
    const r = json<{ copied: number; newerKept: number }>(await cli(['migrate', '--from', from, '--to', to, '--json']));
    expect(r).toMatchObject({ copied: 1, newerKept: 1 });
    expect((await target.get('tokenkeeper:s:a'))?.value.v).toBe('kept');
    expect((await target.get('tokenkeeper:s:b'))?.value.v).toBe('new');
    await target.close();
  }, 30_000);
});

describe('rekey', () => {
  it('re-encrypts every record under the new key, interrupted and resumed: every record readable with the new key alone', async () => {
    const COUNT = 3_000;
    const url = place('sqlite');
    const raw = await openStoreUrl(url);
    const old = encryptedStore(raw, { keys: { k1: KEY1.slice(3) }, current: 'k1' });
    await Promise.all(Array.from({ length: COUNT }, (_, i) => old.set(`tokenkeeper:s:u${i}`, { i })));
    const args = ['rekey', '--store', url, '--key', KEY1, '--new-key', KEY2, '--json'];
    const first = startChild('../../src/cli/main.ts', args);
    const underNew = async () => {
      let n = 0;
      for await (const key of raw.keys('tokenkeeper:')) if ((await raw.get(key))?.value.kid === 'k2') n++;
      return n;
    };
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (await underNew()) < COUNT / 5) await new Promise((r) => setTimeout(r, 100));
    first.child.kill('SIGKILL');
    await first.done;
    const halfway = await underNew();
    expect(halfway).toBeGreaterThan(0);
    expect(halfway).toBeLessThan(COUNT);

    const resumed = json<{ rekeyed: number; already: number; failed: number }>(await cli(args));
    expect(resumed.failed).toBe(0);
    expect(resumed.rekeyed + resumed.already).toBe(COUNT);
    const fresh = encryptedStore(raw, { keys: { k2: KEY2.slice(3) }, current: 'k2' });
    for (let i = 0; i < COUNT; i++) expect((await fresh.get(`tokenkeeper:s:u${i}`))?.value).toEqual({ i });
    await raw.close();
  }, 120_000);
});

describe('doctor', () => {
  it('checks the file store, its permissions and latency, and the server', async () => {
    const url = place('file');
    const store = await openStoreUrl(url);
    await seed(store, ['alice']);
    await store.close();
    const r = await cli(['doctor', '--store', url, '--issuer', as.issuer, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const checks = json<{ check: string; ok: boolean; detail: string }[]>(r);
    expect(checks.map((c) => c.check)).toEqual([
      'file permissions',
      'store',
      'sessions',
      'locks',
      'discovery',
      'revocation',
      'clock skew',
    ]);
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(checks.find((c) => c.check === 'file permissions')?.detail).toContain('0700');
    expect(checks.find((c) => c.check === 'locks')?.detail).toBe('none held');
  }, 30_000);
});

describe('doctor and locks', () => {
  // PostgreSQL times its leases by its own clock, SQLite and the file store by the holder's.
  for (const [kind, label] of [
    ['file', 'file store in a namespace'],
    ['sqlite', 'SQLite'],
    ['postgres', 'PostgreSQL'],
  ] as const) {
    it(`names the locks held and who holds them, and flags a stale one (${label})`, async () => {
      const url = kind === 'file' ? `${place(kind)}?namespace=app_1` : place(kind);
      const store = await openStoreUrl(url);
      const held = await store.lock('tokenkeeper:s:busy', { leaseMs: 60_000 });
      await store.lock('tokenkeeper:s:dead', { leaseMs: 50 }); // never released: its holder "died"
      await new Promise((r) => setTimeout(r, 100));
      const r = await cli(['doctor', '--store', url, '--json']);
      expect(r.code).toBe(1);
      const locks = json<{ check: string; ok: boolean; detail: string }[]>(r).find((c) => c.check === 'locks');
      expect(locks?.ok).toBe(false);
      expect(locks?.detail).toMatch(/^2 held, 1 stale/);
      expect(locks?.detail).toContain(`tokenkeeper:s:busy (pid ${process.pid} on ${hostname()}, until `);
      expect(locks?.detail).toMatch(/tokenkeeper:s:dead \(pid \d+.*STALE/);
      await held.release();
      const after = json<{ check: string; detail: string }[]>(await cli(['doctor', '--store', url, '--json']));
      expect(after.find((c) => c.check === 'locks')?.detail).not.toContain('busy');
      await store.close();
    }, 30_000);
  }

  it('names the locks held in Redis with the time left, and none of another namespace', async () => {
    const url = place('redis');
    const other = place('redis');
    const store = await openStoreUrl(url);
    const neighbour = await openStoreUrl(other);
    const held = await store.lock('tokenkeeper:s:busy*{x}', { leaseMs: 60_000 });
    const theirs = await neighbour.lock('tokenkeeper:s:theirs', { leaseMs: 60_000 });
    const r = await cli(['doctor', '--store', url, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const locks = json<{ check: string; ok: boolean; detail: string }[]>(r).find((c) => c.check === 'locks');
    expect(locks?.ok).toBe(true);
    expect(locks?.detail).toMatch(/^1 held: tokenkeeper:s:busy\*\{x\} \(holder unknown, until /);
    const until = Date.parse(locks?.detail.match(/until (\S+)\)/)?.[1] ?? '');
    expect(until - Date.now()).toBeGreaterThan(50_000);
    expect(locks?.detail).not.toContain('theirs');
    await held.release();
    await theirs.release();
    const after = json<{ check: string; detail: string }[]>(await cli(['doctor', '--store', url, '--json']));
    expect(after.find((c) => c.check === 'locks')?.detail).toBe('none held');
    await store.close();
    await neighbour.close();
  }, 30_000);

  it('sessions clear --revoke revokes each at the server first', async () => {
    const url = place('file');
    const store = await openStoreUrl(url);
    // Bound to the issuer the command is given (a session of another server is not revoked by it).
    const manager = new SessionManager({
      store,
      issuer: as.issuer,
      client: { clientId: as.clientId, clientSecret: as.clientSecret },
    });
    await manager.adopt('a', as.issue());
    await manager.adopt('b', as.issue());
    await store.close();
    const before = as.counts.revocations;
    const r = await cli(
      [
        'sessions',
        'clear',
        '--revoke',
        '--yes',
        '--store',
        url,
        '--issuer',
        as.issuer,
        '--client-id',
        as.clientId,
        '--json',
      ],
      {
        TOKENKEEPER_CLIENT_SECRET: as.clientSecret,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toEqual({ removed: 2 });
    expect(as.counts.revocations - before).toBe(4); // each session: its refresh token, then its access token
    const missing = await cli(['sessions', 'clear', '--revoke', '--yes', '--store', url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--issuer');
  }, 30_000);
});

describe('bad input', () => {
  it('an unknown store URL, or none: exit 2 with the reason', async () => {
    const r = await cli(['sessions', 'list', '--store', 'ftp://example.com/x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown store URL scheme ftp:');
    const none = await cli(['sessions', 'list'], { TOKENKEEPER_STORE: '' });
    expect(none.code).toBe(2);
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).not.toBe(0);
  }, 30_000);

  it('a wrong key: exit 4, the records shown as unreadable, never garbled', async () => {
    const url = place('file');
    const raw = await openStoreUrl(url);
    await encryptedStore(raw, { keys: { k1: KEY1.slice(3) }, current: 'k1' }).set('tokenkeeper:s:alice', { x: 1 });
    await raw.close();
    const wrong = `k1:${Buffer.alloc(32, 9).toString('base64')}`;
    const r = await cli(['sessions', 'list', '--store', url, '--key', wrong, '--json']);
    expect(r.code).toBe(4);
    expect(json<{ id: string; problem: string }[]>(r)).toEqual([
      { id: 'alice', status: 'unreadable', problem: 'TOKENKEEPER_DECRYPT_FAILED' },
    ]);
  }, 30_000);

  it('a store that is down: exit 3', async () => {
    const r = await cli(['doctor', '--store', 'postgres://127.0.0.1:1/none', '--json']);
    expect(r.code).toBe(3);
    expect(json<{ check: string; ok: boolean }[]>(r).find((c) => c.check === 'store')?.ok).toBe(false);
  }, 30_000);
});
