import pg from 'pg';
import { afterAll } from 'vitest';
import { postgresStore } from '../src/exports/postgres.js';
import { describeStoreConformance } from '../src/exports/testing.js';
import type { Store } from '../src/store/types.js';
import { DATABASE_URL, runId } from './helpers/services.js';

// Each store gets a table of its own, dropped at the end, so runs never see each other's data.
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 20 });
const tables: string[] = [];
afterAll(async () => {
  for (const t of tables) await pool.query(`DROP TABLE IF EXISTS "${t}", "${t}_locks"`);
  await pool.end();
});
const table = () => {
  const t = runId();
  tables.push(t);
  return t;
};

const tableOf = new WeakMap<Store, string>();
const make = (connection: { pool: pg.Pool } | { connectionString: string }) => () => {
  const t = table();
  const store = postgresStore(connection, { table: t });
  tableOf.set(store, t);
  return store;
};
// A row edited by hand in psql.
const corrupt = async (store: Store, key: string) => {
  await store.get('any'); // the store creates its table on first use
  await pool.query(
    `INSERT INTO "${tableOf.get(store)}" (key, value, version) VALUES ($1, 'not json', 1)
     ON CONFLICT (key) DO UPDATE SET value = 'not json', version = 1, expires_at = NULL`,
    [key],
  );
};

describeStoreConformance('postgresStore (shared pool)', make({ pool }), { corrupt });
describeStoreConformance('postgresStore (connection string)', make({ connectionString: DATABASE_URL }), {
  listCount: 1200,
  corrupt,
});
