import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { postgresStore } from '../src/exports/postgres.js';
import { redisStore } from '../src/exports/redis.js';
import { sqliteStore } from '../src/exports/sqlite.js';
import type { Store } from '../src/index.js';
import { DATABASE_URL, REDIS_URL, runId } from '../test/helpers/services.js';
import { compareThroughput, fmt } from './harness.js';

const record = {
  tokenkeeper: 'session/1',
  tokens: {
    accessToken: 'a'.repeat(40),
    tokenType: 'Bearer',
    expiresAt: Date.now() + 3_600_000,
    refreshToken: 'r'.repeat(40),
  },
  grant: 'refresh_token',
  renewBy: 'refresh_token',
  status: 'active',
  createdAt: Date.now(),
  updatedAt: Date.now(),
};
const json = JSON.stringify(record);
const KEYS = 1000;
// Every write changes the row, as a refresh does: SQLite commits a byte-identical row almost for
// free, which would flatter whichever side rewrote the same bytes.
const recordN = (i: number) => ({ ...record, updatedAt: i });
const jsonN = (i: number) => JSON.stringify(recordN(i));

export async function benchServerStores(): Promise<void> {
  // Redis: our store vs raw ioredis GET/SET of the same JSON, one shared connection each.
  const prefix = `${runId()}:`;
  const raw = new Redis(REDIS_URL);
  const oursClient = new Redis(REDIS_URL);
  const ours = redisStore({ client: oursClient, prefix });
  for (let i = 0; i < KEYS; i++) {
    await ours.set(`k${i}`, record);
    await raw.set(`${prefix}raw:${i}`, json);
  }
  await compareThroughput('Redis: redisStore vs raw ioredis', [
    {
      name: 'redisStore.get',
      baselineName: 'ioredis GET + JSON.parse',
      ours: (i) => ours.get(`k${i % KEYS}`),
      baseline: async (i) => JSON.parse((await raw.get(`${prefix}raw:${i % KEYS}`)) as string),
    },
    {
      name: 'redisStore.set (versioned, Lua)',
      baselineName: 'ioredis SET',
      ours: (i) => ours.set(`k${i % KEYS}`, recordN(i)),
      baseline: (i) => raw.set(`${prefix}raw:${i % KEYS}`, jsonN(i)),
    },
  ]);

  // PostgreSQL: our store vs raw pg queries on a table of the same shape.
  const table = runId();
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
  const pgStore = postgresStore({ pool }, { table });
  await pgStore.get('warm');
  const rawTable = `${table}_raw`;
  await pool.query(`CREATE TABLE "${rawTable}" (key text PRIMARY KEY, value text NOT NULL)`);
  for (let i = 0; i < KEYS; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => pgStore.set(`k${i + j}`, record)));
    await pool.query(`INSERT INTO "${rawTable}" SELECT 'k' || g, $1 FROM generate_series($2::int, $3::int) g`, [
      json,
      i,
      i + 99,
    ]);
  }
  await compareThroughput('PostgreSQL: postgresStore vs raw pg', [
    {
      name: 'postgresStore.get',
      baselineName: 'pg SELECT + JSON.parse',
      ours: (i) => pgStore.get(`k${i % KEYS}`),
      baseline: async (i) =>
        JSON.parse(
          (await pool.query(`SELECT value FROM "${rawTable}" WHERE key = $1`, [`k${i % KEYS}`])).rows[0].value,
        ),
    },
    {
      name: 'postgresStore.set (upsert, version)',
      baselineName: 'pg UPSERT',
      ours: (i) => pgStore.set(`k${i % KEYS}`, recordN(i)),
      baseline: (i) =>
        pool.query(
          `INSERT INTO "${rawTable}" (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
          [`k${i % KEYS}`, jsonN(i)],
        ),
    },
  ]);

  // SQLite: our store vs raw better-sqlite3 on the same file settings (WAL, synchronous FULL).
  const dir = mkdtempSync(join(tmpdir(), 'tk-bench-sqlite-'));
  const sq = sqliteStore({ path: join(dir, 'ours.db') });
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
  const rawGet = db.prepare('SELECT value FROM t WHERE key = ?');
  const rawSet = db.prepare(
    'INSERT INTO t (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );
  for (let i = 0; i < KEYS; i++) {
    await sq.set(`k${i}`, record);
    rawSet.run(`k${i}`, json);
  }
  await compareThroughput(
    'SQLite: sqliteStore vs raw better-sqlite3',
    [
      {
        name: 'sqliteStore.get',
        baselineName: 'SELECT + JSON.parse',
        ours: (i) => sq.get(`k${i % KEYS}`),
        baseline: async (i) => JSON.parse((rawGet.get(`k${i % KEYS}`) as { value: string }).value),
      },
      {
        name: 'sqliteStore.set (CAS transaction)',
        baselineName: 'UPSERT',
        ours: (i) => sq.set(`k${i % KEYS}`, recordN(i)),
        baseline: async (i) => rawSet.run(`k${i % KEYS}`, jsonN(i)),
      },
    ],
    { concurrency: 1 },
  );

  // Listing: time and peak heap growth while streaming N keys, for growing N.
  console.log('\n## Listing sessions: streamed keys(), time and peak retained heap\n');
  console.log('| store | keys | time (ms) | keys/s | peak retained heap (MB) |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  const listRedis = redisStore({ client: raw, prefix: `${runId()}:` });
  const listPg = postgresStore({ pool }, { table: `${table}_list` });
  await listPg.get('warm');
  let have = 0;
  for (const n of [10_000, 50_000, 100_000]) {
    // Fill up to n: Redis through the store (64 at a time), PostgreSQL in bulk SQL of the store's row format.
    for (let i = have; i < n; i += 64) {
      await Promise.all(Array.from({ length: Math.min(64, n - i) }, (_, j) => listRedis.set(`user-${i + j}`, record)));
    }
    await pool.query(
      `INSERT INTO "${table}_list" (key, value, version, expires_at) SELECT 'user-' || g, $1, 1, NULL FROM generate_series($2::int, $3::int) g`,
      [json, have, n - 1],
    );
    have = n;
    for (const [label, store] of [
      ['redisStore', listRedis],
      ['postgresStore', listPg],
    ] as [string, Store][]) {
      const { ms, peakMb, count } = await measureListing(store);
      console.log(`| ${label} | ${fmt(count)} | ${fmt(ms)} | ${fmt((count / ms) * 1000)} | ${peakMb.toFixed(1)} |`);
    }
  }

  await pool.query(
    `DROP TABLE IF EXISTS "${table}", "${rawTable}", "${table}_list", "${table}_locks", "${table}_list_locks"`,
  );
  for (const store of [ours, listRedis]) for await (const k of store.keys()) await store.delete(k);
  await raw.eval(`for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end`, 0, `${prefix}raw:*`);
  await ours.close();
  await oursClient.quit(); // a store never closes a client it was given
  await pool.end();
  await raw.quit();
  db.close();
  await sq.close();
}

async function measureListing(store: Store): Promise<{ ms: number; peakMb: number; count: number }> {
  // Retained heap, not garbage: collect at each sample (npm run bench runs with --expose-gc).
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  gc();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  let count = 0;
  let paused = 0;
  const started = performance.now();
  for await (const _ of store.keys('user-')) {
    if (++count % 10_000 === 0) {
      const t = performance.now();
      gc();
      peak = Math.max(peak, process.memoryUsage().heapUsed);
      paused += performance.now() - t; // the forced collections are not the listing's time
    }
  }
  return { ms: performance.now() - started - paused, peakMb: (peak - base) / 1024 / 1024, count };
}
