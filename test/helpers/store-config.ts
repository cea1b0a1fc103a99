// A store described as JSON, so a child process can open the same store as its parent.

import pg from 'pg';
import { fileStore } from '../../src/exports/file.js';
import { postgresStore } from '../../src/exports/postgres.js';
import { redisStore } from '../../src/exports/redis.js';
import { sqliteStore } from '../../src/exports/sqlite.js';
import type { Store } from '../../src/index.js';
import { DATABASE_URL, deleteRedisPrefixes, REDIS_URL, runId } from './services.js';

export type StoreConfig =
  | { kind: 'file'; path: string }
  | { kind: 'sqlite'; path: string }
  | { kind: 'redis'; url: string; prefix: string }
  | { kind: 'postgres'; connectionString: string; table: string; poolSize?: number };

export function openStore(config: StoreConfig): Store {
  switch (config.kind) {
    case 'file':
      return fileStore({ path: config.path });
    case 'sqlite':
      return sqliteStore({ path: config.path });
    case 'redis':
      return redisStore({ url: config.url, prefix: config.prefix });
    case 'postgres':
      return postgresStore(
        { connectionString: config.connectionString, ...(config.poolSize ? { poolSize: config.poolSize } : {}) },
        { table: config.table },
      );
  }
}

/**
 * The four stores shared across processes, each in a place of its own for one test (a folder or
 * database file beside `dir`, a Redis prefix, a PostgreSQL table), and a cleanup for the servers.
 */
export function sharedStores() {
  const tables: string[] = [];
  const redisPrefixes: string[] = [];
  const stores: [string, (dir: string) => StoreConfig][] = [
    ['file store', (dir) => ({ kind: 'file', path: dir })],
    ['SQLite', (dir) => ({ kind: 'sqlite', path: `${dir}.db` })],
    [
      'Redis',
      () => {
        const prefix = `${runId()}:`;
        redisPrefixes.push(prefix);
        return { kind: 'redis', url: REDIS_URL, prefix };
      },
    ],
    [
      'PostgreSQL',
      () => {
        const table = runId();
        tables.push(table);
        return { kind: 'postgres', connectionString: DATABASE_URL, table };
      },
    ],
  ];
  const cleanup = async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    for (const t of tables) await pool.query(`DROP TABLE IF EXISTS "${t}", "${t}_locks"`);
    await pool.end();
    await deleteRedisPrefixes(redisPrefixes);
  };
  return { stores, cleanup };
}
