import pg from 'pg';
import { afterAll } from 'vitest';
import { postgresStore } from '../src/exports/postgres.js';
import { describeStoreConformance } from '../src/exports/testing.js';
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

describeStoreConformance('postgresStore (shared pool)', () => postgresStore({ pool }, { table: table() }));
describeStoreConformance(
  'postgresStore (connection string)',
  () => postgresStore({ connectionString: DATABASE_URL }, { table: table() }),
  {
    listCount: 1200,
  },
);
