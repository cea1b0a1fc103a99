/** `tokenkeeper/postgres`: the PostgreSQL store, on pg. */

export type { PostgresConnection, PostgresStore, PostgresStoreOptions } from '../store/postgres/index.js';
export { postgresMigrationSql, postgresStore } from '../store/postgres/index.js';
