// `npm run bench list`: `tokenkeeper sessions list` (the built command, `npm run build` first) on
// N sessions in Redis and PostgreSQL, against the bare listing of the same records in the same
// run: Redis SCAN + MGET, PostgreSQL one SELECT of every row, parsed. Flags: --sessions N
// (default 100,000), --runs R (default 3).
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { postgresStore } from '../src/exports/postgres.js';
import { redisStore } from '../src/exports/redis.js';
import { SessionManager, type Store } from '../src/index.js';
import { startFakeAuthServer } from '../test/helpers/fake-as.js';
import { DATABASE_URL, deleteRedisPrefixes, REDIS_URL, runId } from '../test/helpers/services.js';
import { fmt } from './harness.js';

const run = promisify(execFile);

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

async function fill(store: Store, n: number): Promise<void> {
  const as = await startFakeAuthServer();
  const manager = new SessionManager({
    store,
    tokenEndpoint: as.tokenEndpoint,
    client: { clientId: as.clientId, clientSecret: as.clientSecret },
  });
  const body = as.issue({ expiresIn: 3600 });
  for (let i = 0; i < n; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => manager.adopt(`u${i + j}`, { ...body })));
  }
  await as.close();
}

async function timeIt(fn: () => Promise<unknown>, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const started = performance.now();
    await fn();
    out.push(performance.now() - started);
  }
  return out;
}

export async function benchList(): Promise<void> {
  const n = Number(flag('sessions', '100000'));
  const runs = Number(flag('runs', '3'));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const cli = (url: string) => () =>
    run(process.execPath, ['dist/cli.js', 'sessions', 'list', '--store', url, '--json'], { maxBuffer: 1 << 30 });
  console.log(
    `\n## tokenkeeper sessions list on ${fmt(n)} sessions vs the bare listing (min / median of ${runs}, ms)\n`,
  );
  console.log(
    `Load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')} (a shared 2-core machine).\n`,
  );
  console.log('| store | the command (process start, list, print JSON) | bare listing | command / bare (medians) |');
  console.log('| --- | ---: | ---: | ---: |');

  // Redis: SCAN + MGET of the same keys, parsed.
  const ns = runId();
  const store = redisStore({ url: REDIS_URL, namespace: ns });
  await fill(store, n);
  await store.close();
  const raw = new Redis(REDIS_URL);
  const bareRedis = async () => {
    let cursor = '0';
    let count = 0;
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${ns}:{tokenkeeper:s:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) for (const v of await raw.mget(...keys)) if (v !== null && JSON.parse(v)) count++;
    } while (cursor !== '0');
    return count;
  };
  const redisCli = await timeIt(cli(`${REDIS_URL}?namespace=${ns}`), runs);
  const redisBare = await timeIt(bareRedis, runs);
  console.log(
    `| Redis | ${fmt(Math.min(...redisCli))} / ${fmt(median(redisCli))} | ${fmt(Math.min(...redisBare))} / ${fmt(median(redisBare))} | ${(median(redisCli) / median(redisBare)).toFixed(2)}x |`,
  );
  await raw.quit();
  await deleteRedisPrefixes([`${ns}:`]);

  // PostgreSQL: one SELECT of every row of the table, parsed.
  const table = runId();
  const pgStore = postgresStore({ connectionString: DATABASE_URL, namespace: table });
  await fill(pgStore, n);
  await pgStore.close();
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const barePg = async () => {
    const r = await pool.query(
      `SELECT key, value FROM "${table}_records" WHERE key LIKE 'tokenkeeper:s:%' ORDER BY key`,
    );
    let count = 0;
    for (const row of r.rows) if (JSON.parse(row.value as string)) count++;
    return count;
  };
  const pgCli = await timeIt(cli(`${DATABASE_URL}?namespace=${table}`), runs);
  const pgBare = await timeIt(barePg, runs);
  console.log(
    `| PostgreSQL | ${fmt(Math.min(...pgCli))} / ${fmt(median(pgCli))} | ${fmt(Math.min(...pgBare))} / ${fmt(median(pgBare))} | ${(median(pgCli) / median(pgBare)).toFixed(2)}x |`,
  );
  await pool.query(`DROP TABLE IF EXISTS "${table}_records", "${table}_records_locks"`);
  await pool.end();
  console.log(
    `\nLoad average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  );
}
