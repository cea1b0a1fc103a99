/** `tokenkeeper/sqlite`: the SQLite store, on better-sqlite3. */

export type { SqliteStoreOptions } from '../store/sqlite/index.js';
export { sqliteStore } from '../store/sqlite/index.js';
