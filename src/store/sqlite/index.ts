import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { redactedCause, TokenkeeperError } from '../../errors.js';
import { assertValidKey, assertValidPrefix, storeNamespace } from '../kit/keys.js';
import { createLease } from '../kit/lease.js';
import { currentProcess, type HeldLock, heldLock, holderGone } from '../kit/liveness.js';
import { pollLock } from '../kit/poll-lock.js';
import {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  lockOptions,
  randomToken,
  rowEntry,
} from '../kit/records.js';
import { planDelete, planSet, readStoredSync, type Stored } from '../kit/write.js';
import type { DeleteOptions, Lease, LockOptions, SetOptions, Store, StoreEntry, StoreRecord } from '../types.js';

export interface SqliteStoreOptions {
  /** The database file; created 0600 (its directory 0700) if missing. */
  path: string;
  /**
   * Keeps stores sharing one database file apart (default `tokenkeeper`): tables
   * `<namespace>_records` and `<namespace>_locks`. 1 to 40 letters, digits or `_`, starting
   * with a letter.
   */
  namespace?: string;
  /**
   * How long a write waits for another process's write transaction (default 5 s). better-sqlite3
   * is synchronous: the wait blocks this thread, so keep it short; transactions here are tiny.
   */
  busyTimeoutMs?: number;
}

const PAGE = 500;

interface LockRow {
  token: string;
  pid: number | null;
  host: string | null;
  start: number | null;
  expires_at: number;
}

interface Row {
  value: string;
  version: number;
  expires_at: number | null;
}

/**
 * A store in an SQLite file, on better-sqlite3: the embedded database for one machine with
 * several processes. WAL mode with `synchronous = FULL` (a committed write survives power
 * loss), a busy timeout, compare-and-set in an immediate transaction, and a cross-process lease
 * lock kept as a row (a crashed holder's lease simply ends).
 *
 * @example
 * import { sqliteStore } from 'tokenkeeper/sqlite';
 * const store = sqliteStore({ path: './tokens.db' });
 */
export function sqliteStore(options: SqliteStoreOptions): Store {
  if (typeof options !== 'object' || options === null || typeof options.path !== 'string' || !options.path) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'sqliteStore({ path }) needs the database file path.');
  }
  const busy = options.busyTimeoutMs ?? 5_000;
  if (typeof busy !== 'number' || !Number.isFinite(busy) || busy < 0) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'busyTimeoutMs must be a non-negative number.');
  }
  const namespace = storeNamespace(options.namespace, 'sqliteStore') ?? 'tokenkeeper';
  const path = resolve(options.path);
  const name = namespace === 'tokenkeeper' ? `sqlite:${path}` : `sqlite:${path}#${namespace}`;
  let state: ReturnType<typeof openDatabase> | undefined;
  let closed = false;

  const db = () => {
    if (closed) throw closedError(name);
    state ??= openDatabase(path, busy, name, namespace);
    return state;
  };
  const wrap = <T>(key: string | undefined, fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      throw sqliteError(error, name, key);
    }
  };

  return {
    name,
    capabilities: { crossProcessLock: true },

    async get(key: string): Promise<StoreEntry | undefined> {
      assertValidKey(key);
      const s = db();
      const row = wrap(key, () => s.get.get(key, Date.now()) as Row | undefined);
      return row === undefined ? undefined : rowEntry(key, path, row);
    },

    async set(key: string, value: StoreRecord, setOptions?: SetOptions): Promise<number> {
      assertValidKey(key);
      const expiresAt = checkSetOptions(setOptions, Date.now()) ?? null;
      const json = JSON.stringify(copyRecord(value));
      const s = db();
      return wrap(key, () => s.setTx.immediate(key, json, expiresAt, setOptions ?? {}, Date.now()));
    },

    async delete(key: string, deleteOptions?: DeleteOptions): Promise<boolean> {
      assertValidKey(key);
      checkDeleteOptions(deleteOptions);
      const s = db();
      return wrap(key, () => s.deleteTx.immediate(key, deleteOptions, Date.now()));
    },

    async *keys(prefix = ''): AsyncIterable<string> {
      assertValidPrefix(prefix);
      const s = db();
      let after: string | null = null;
      for (;;) {
        const cursor: string | null = after;
        const rows: { key: string }[] = wrap(undefined, () =>
          cursor === null
            ? (s.firstPage.all(prefix, prefix, Date.now()) as { key: string }[])
            : (s.nextPage.all(cursor, prefix, Date.now()) as { key: string }[]),
        );
        for (const row of rows) yield row.key;
        if (rows.length < PAGE) return;
        after = (rows[rows.length - 1] as { key: string }).key;
      }
    },

    async lock(key: string, lockOpts?: LockOptions): Promise<Lease> {
      assertValidKey(key);
      lockOptions(lockOpts);
      const s = db();
      const token = randomToken();
      let takenAt = 0;
      const me = currentProcess();
      let predecessor: Lease['predecessor'];
      const take = (leaseMs: number): boolean => {
        takenAt = Date.now();
        const until = takenAt + leaseMs;
        const held = wrap(key, () => s.lockHolder.get(key) as LockRow | undefined);
        if (held === undefined || held.expires_at <= takenAt) {
          const took =
            wrap(key, () => s.takeLock.run(key, token, until, me.pid, me.host, me.start ?? null, takenAt).changes) ===
            1;
          if (took) predecessor = held === undefined ? 'released' : 'expired';
          return took;
        }
        // Held: if its holder on this host is gone (killed, crashed), take it over at once,
        // only while the row still carries that holder's token.
        if (!holderGone(held)) return false;
        predecessor = 'gone';
        return (
          wrap(key, () => s.takeOver.run(token, until, me.pid, me.host, me.start ?? null, key, held.token).changes) ===
          1
        );
      };
      const length = await pollLock(
        key,
        lockOpts,
        async (leaseMs) => (take(leaseMs) ? leaseMs : undefined),
        async () => {
          const h = s.lockHolder.get(key) as LockRow | undefined;
          return h && { pid: h.pid ?? undefined, host: h.host ?? undefined, expiresAt: h.expires_at };
        },
      );
      return createLease(
        key,
        length,
        takenAt,
        {
          release: async () => {
            if (!closed) wrap(key, () => s.releaseLock.run(key, token));
          },
          // Only while the row still carries our token: then nobody else held the lock since.
          renew: async (leaseMs) => wrap(key, () => s.extendLock.run(Date.now() + leaseMs, key, token).changes) === 1,
        },
        predecessor,
      );
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      state?.database.close();
    },
  };
}

/**
 * The locks held now in a SQLite store, with the process and host that took each. Reads only;
 * for `tokenkeeper doctor`.
 */
export function sqliteLocks(path: string, options: { namespace?: string } = {}): HeldLock[] {
  const namespace = storeNamespace(options.namespace, 'sqliteLocks') ?? 'tokenkeeper';
  const db = new Database(resolve(path), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare(`SELECT key, pid, host, expires_at FROM "${namespace}_locks"`).all() as {
      key: string;
      pid: number | null;
      host: string | null;
      expires_at: number;
    }[];
    const now = Date.now();
    return rows.map((r) => heldLock(r.key, r.pid, r.host, Number(r.expires_at) - now));
  } catch (error) {
    if (/no such table/.test((error as Error).message)) return []; // no lock ever taken
    throw error;
  } finally {
    db.close();
  }
}

function openDatabase(path: string, busyTimeoutMs: number, name: string, namespace: string) {
  const records = `"${namespace}_records"`;
  const locks = `"${namespace}_locks"`;
  let database: Database.Database;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Create the file 0600 before SQLite does; its -wal and -shm files take the same mode.
    closeSync(openSync(path, 'a', 0o600));
    database = new Database(path, { timeout: busyTimeoutMs });
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = FULL');
    database.exec(`
      CREATE TABLE IF NOT EXISTS ${records} (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL, expires_at INTEGER
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS ${locks} (
        key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at INTEGER NOT NULL, pid INTEGER, host TEXT, start INTEGER
      ) WITHOUT ROWID;`);
    // Databases created before 0.2 lack the holder's start time.
    const columns = database.prepare(`PRAGMA table_info(${locks})`).all() as { name: string }[];
    if (!columns.some((c) => c.name === 'start')) database.exec(`ALTER TABLE ${locks} ADD COLUMN start INTEGER`);
  } catch (error) {
    throw sqliteError(error, name);
  }
  const live = '(expires_at IS NULL OR expires_at > ?)';
  const current = database.prepare<[string], Row>(`SELECT value, version, expires_at FROM ${records} WHERE key = ?`);
  const upsert = database.prepare(
    `INSERT INTO ${records} (key, value, version, expires_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at`,
  );
  const remove = database.prepare(`DELETE FROM ${records} WHERE key = ?`);
  /** What a write finds at `key`: an expired row counts as absent, one we cannot read as corrupt. */
  const stored = (key: string, row: Row | undefined, now: number): Stored =>
    readStoredSync(() =>
      row === undefined || (row.expires_at !== null && row.expires_at <= now) ? undefined : rowEntry(key, name, row),
    );

  return {
    database,
    get: database.prepare(`SELECT value, version, expires_at FROM ${records} WHERE key = ? AND ${live}`),
    // Versions keep counting over an expired row, so they never repeat.
    setTx: database.transaction(
      (key: string, json: string, expiresAt: number | null, options: SetOptions, now: number) => {
        const row = current.get(key);
        const next = planSet(key, stored(key, row, now), options, Number(row?.version) || 0);
        upsert.run(key, json, next, expiresAt);
        return next;
      },
    ),
    deleteTx: database.transaction((key: string, options: DeleteOptions | undefined, now: number) => {
      const row = current.get(key);
      const live = planDelete(key, stored(key, row, now), options);
      remove.run(key);
      return live;
    }),
    firstPage: database.prepare(
      `SELECT key FROM ${records} WHERE key >= ? AND instr(key, ?) = 1 AND ${live} ORDER BY key LIMIT ${PAGE}`,
    ),
    nextPage: database.prepare(
      `SELECT key FROM ${records} WHERE key > ? AND instr(key, ?) = 1 AND ${live} ORDER BY key LIMIT ${PAGE}`,
    ),
    takeLock: database.prepare(
      `INSERT INTO ${locks} (key, token, expires_at, pid, host, start) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at, pid = excluded.pid,
         host = excluded.host, start = excluded.start
       WHERE ${locks}.expires_at <= ?`,
    ),
    releaseLock: database.prepare(`DELETE FROM ${locks} WHERE key = ? AND token = ?`),
    extendLock: database.prepare(`UPDATE ${locks} SET expires_at = ? WHERE key = ? AND token = ?`),
    lockHolder: database.prepare(`SELECT token, pid, host, start, expires_at FROM ${locks} WHERE key = ?`),
    takeOver: database.prepare(
      `UPDATE ${locks} SET token = ?, expires_at = ?, pid = ?, host = ?, start = ? WHERE key = ? AND token = ?`,
    ),
  };
}

function sqliteError(error: unknown, name: string, key?: string): unknown {
  if (error instanceof TokenkeeperError) return error;
  const e = error as { code?: string; message?: string };
  const hint =
    e?.code === 'SQLITE_BUSY'
      ? ' Another process held a write transaction longer than busyTimeoutMs.'
      : e?.code === 'SQLITE_NOTADB' || e?.code === 'SQLITE_CORRUPT'
        ? ' The file is not an SQLite database, or is damaged: restore it from a backup or move it aside.'
        : '';
  return new TokenkeeperError(
    'TOKENKEEPER_STORE_UNAVAILABLE',
    `SQLite (${name}) failed: ${e?.code ? `${e.code} ` : ''}${String(e?.message ?? error).slice(0, 200)}.${hint}`,
    { cause: redactedCause(error), key },
  );
}
