// One name for the namespacing idea, one options object for every store factory, and the 0.1
// names and shapes still working as deprecated aliases that reach the same data.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import Keyv from 'keyv';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import { keyvStore } from '../src/exports/keyv.js';
import { postgresMigrationSql, postgresStore } from '../src/exports/postgres.js';
import { redisStore } from '../src/exports/redis.js';
import { sqliteStore } from '../src/exports/sqlite.js';
import { indexedDbStore, type Store, webStorageStore } from '../src/index.js';
import { thrown } from './helpers/errors.js';
import { mapStorage } from './helpers/map-storage.js';
import { DATABASE_URL, deleteRedisPrefixes, REDIS_URL, runId } from './helpers/services.js';

const BAD = ['', 'a:b', '1abc', 'has space', 'x'.repeat(41), 'ünï', 7, null];

/** Two stores reach the same data: what one writes, the other reads. */
async function same(a: Store, b: Store, key = `k${Date.now()}`) {
  await a.set(key, { from: 'a' });
  expect((await b.get(key))?.value).toEqual({ from: 'a' });
  await b.delete(key);
}

/** Two stores share nothing. */
async function apart(a: Store, b: Store) {
  await a.set('k', { from: 'a' });
  expect(await b.get('k')).toBeUndefined();
  const listed: string[] = [];
  for await (const k of b.keys()) listed.push(k);
  expect(listed).toEqual([]);
  await a.delete('k');
}

const redisNamespaces: string[] = [];
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const tables: string[] = [];
afterAll(async () => {
  await deleteRedisPrefixes(redisNamespaces.map((n) => `${n}:`));
  for (const t of tables) await pool.query(`DROP TABLE IF EXISTS "${t}", "${t}_locks"`);
  await pool.end();
});

describe('namespace, the one name for keeping stores on one backend apart', () => {
  it('redisStore: keys start with <namespace>:, the same place the deprecated prefix reached', async () => {
    const ns = runId();
    redisNamespaces.push(ns);
    const store = redisStore({ url: REDIS_URL, namespace: ns });
    const legacy = redisStore({ url: REDIS_URL, prefix: `${ns}:` });
    const other = redisStore({ url: REDIS_URL, namespace: `${ns}_b` });
    redisNamespaces.push(`${ns}_b`);
    try {
      await same(store, legacy);
      await apart(store, other);
      await store.set('seen', { a: 1 });
      const raw = new Redis(REDIS_URL);
      expect(await raw.exists(`${ns}:{seen}:r`)).toBe(1);
      await raw.quit();
      for (const bad of BAD) {
        expect(thrown(() => redisStore({ url: REDIS_URL, namespace: bad as string })).message).toMatch(/namespace/);
      }
      expect(thrown(() => redisStore({ url: REDIS_URL, namespace: 'a', prefix: 'b:' })).message).toMatch(/not both/);
    } finally {
      await Promise.all([store.close(), legacy.close(), other.close()]);
    }
  });

  it('postgresStore: one options object; the namespace names the table; the 0.1 form still works', async () => {
    const ns = runId();
    tables.push(`${ns}_records`, `${ns}_b_records`);
    const store = postgresStore({ pool, namespace: ns });
    const legacy = postgresStore({ pool }, { table: `${ns}_records` });
    const other = postgresStore({ connectionString: DATABASE_URL, namespace: `${ns}_b` });
    try {
      await same(store, legacy);
      await apart(store, other);
      expect(store.name).toContain(`${ns}_records`);
      expect(postgresMigrationSql({ namespace: ns })).toContain(`"${ns}_records_locks"`);
      for (const bad of BAD) {
        expect(thrown(() => postgresStore({ pool, namespace: bad as string })).code).toBe(
          'TOKENKEEPER_INVALID_ARGUMENT',
        );
      }
      expect(thrown(() => postgresStore({ pool, namespace: 'a', table: 'b' })).message).toMatch(/not both/);
      expect(thrown(() => postgresStore({ pool }, null as never)).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    } finally {
      await Promise.all([store.close(), legacy.close(), other.close()]);
    }
  });

  it('sqliteStore: two namespaces in one file share nothing; the default is the 0.1 table', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tk-ns-')), 'tokens.db');
    const a = sqliteStore({ path, namespace: 'alpha' });
    const b = sqliteStore({ path, namespace: 'beta' });
    const plain = sqliteStore({ path });
    const explicit = sqliteStore({ path, namespace: 'tokenkeeper' });
    try {
      await apart(a, b);
      await apart(a, plain);
      await same(plain, explicit);
      for (const bad of BAD) {
        expect(thrown(() => sqliteStore({ path, namespace: bad as string })).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
      }
    } finally {
      await Promise.all([a.close(), b.close(), plain.close(), explicit.close()]);
    }
  });

  it('fileStore: the namespace is a folder under apps/, as the deprecated app option was', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tk-ns-')), 'store');
    const a = fileStore({ path, namespace: 'alpha' });
    const b = fileStore({ path, namespace: 'beta' });
    const root = fileStore({ path });
    expect(a.name).toBe(`file:${join(path, 'apps', 'alpha')}`);
    await apart(a, b);
    await apart(a, root);
    const home = mkdtempSync(join(tmpdir(), 'tk-home-'));
    const saved = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = home;
    try {
      expect(fileStore({ namespace: 'mycli' }).name).toBe(fileStore({ app: 'mycli' }).name);
    } finally {
      if (saved === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = saved;
    }
    for (const bad of BAD) {
      expect(thrown(() => fileStore({ path, namespace: bad as string })).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    }
    expect(thrown(() => fileStore({ namespace: 'a', app: 'b' })).message).toMatch(/not both/);
  });

  it('keyvStore: one options object with a namespace; the 0.1 form keyvStore(keyv) still works', async () => {
    const keyv = new Keyv();
    const a = keyvStore({ keyv, namespace: 'alpha' });
    const b = keyvStore({ keyv, namespace: 'beta' });
    await apart(a, b);
    await same(keyvStore(keyv), keyvStore({ keyv }));
    await a.set('listed', { a: 1 });
    const keys: string[] = [];
    for await (const k of a.keys()) keys.push(k);
    expect(keys).toEqual(['listed']);
    expect(thrown(() => keyvStore({ keyv, namespace: 'a:b' })).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(thrown(() => keyvStore({} as never)).message).toMatch(/Keyv instance/);
  });

  it('webStorageStore: one options object ({ storage, namespace }); the 0.1 form (storage, { prefix }) reaches the same entries', async () => {
    const storage = mapStorage();
    const store = webStorageStore({ storage, namespace: 'app', webLocks: false });
    const legacy = webStorageStore(storage, { prefix: 'app', webLocks: false });
    const other = webStorageStore({ storage, namespace: 'other', webLocks: false });
    await same(store, legacy);
    await apart(store, other);
    await store.set('seen', { a: 1 });
    expect(storage.getItem('app:r:seen')).not.toBeNull();
    for (const bad of BAD) {
      expect(thrown(() => webStorageStore({ storage, namespace: bad as string })).code).toBe(
        'TOKENKEEPER_INVALID_ARGUMENT',
      );
    }
    expect(thrown(() => webStorageStore({ storage, namespace: 'a', prefix: 'b' })).message).toMatch(/not both/);
  });

  it('indexedDbStore: namespace or its deprecated alias name, not both; bad namespaces refused', () => {
    for (const bad of BAD) {
      expect(thrown(() => indexedDbStore({ namespace: bad as string })).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    }
    expect(thrown(() => indexedDbStore({ namespace: 'a', name: 'b' })).message).toMatch(/not both/);
  });
});
