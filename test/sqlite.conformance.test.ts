import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteStore } from '../src/exports/sqlite.js';
import { describeStoreConformance } from '../src/exports/testing.js';
import type { Store } from '../src/store/types.js';

const paths = new WeakMap<Store, string>();

describeStoreConformance(
  'sqliteStore',
  () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tk-sqlite-')), 'db', 'tokens.db');
    const store = sqliteStore({ path });
    paths.set(store, path);
    return store;
  },
  {
    listCount: 1200,
    // A row edited by hand in a database shell.
    corrupt: async (store, key) => {
      await store.get('any'); // the store creates its table on first use
      const db = new Database(paths.get(store) as string);
      db.prepare(
        `INSERT INTO tokenkeeper_records (key, value, version) VALUES (?, 'not json', 1)
         ON CONFLICT (key) DO UPDATE SET value = 'not json', version = 1, expires_at = NULL`,
      ).run(key);
      db.close();
    },
  },
);
