// A store described as JSON, so a child process can open the same store as its parent.
import { fileStore } from '../../src/exports/file.js';
import { postgresStore } from '../../src/exports/postgres.js';
import { redisStore } from '../../src/exports/redis.js';
import { sqliteStore } from '../../src/exports/sqlite.js';
import type { Store } from '../../src/index.js';

export type StoreConfig =
  | { kind: 'file'; path: string }
  | { kind: 'sqlite'; path: string }
  | { kind: 'redis'; url: string; prefix: string }
  | { kind: 'postgres'; connectionString: string; table: string };

export function openStore(config: StoreConfig): Store {
  switch (config.kind) {
    case 'file':
      return fileStore({ path: config.path });
    case 'sqlite':
      return sqliteStore({ path: config.path });
    case 'redis':
      return redisStore({ url: config.url, prefix: config.prefix });
    case 'postgres':
      return postgresStore({ connectionString: config.connectionString }, { table: config.table });
  }
}
