import pg from 'pg';
import { redactedCause, TokenkeeperError } from '../../errors.js';
import { assertValidKey, assertValidPrefix } from '../keys.js';
import { pollLock } from '../poll-lock.js';
import {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  lockOptions,
  rowEntry,
  versionConflict,
} from '../records.js';
import type { DeleteOptions, Lease, LockOptions, SetOptions, Store, StoreEntry, StoreRecord } from '../types.js';

export type PostgresConnection =
  | {
      /** Your `pg` Pool. The store never ends it. */
      pool: pg.Pool;
      connectionString?: never;
    }
  | {
      /** A connection string: the store makes (and on close, ends) its own pool. */
      connectionString: string;
      pool?: never;
    };

export interface PostgresStoreOptions {
  /** The table (default `tokenkeeper_records`); letters, digits and `_` only. */
  table?: string;
  /** The schema of the table (default: the connection's search path). */
  schema?: string;
  /**
   * Create the table on first use (default true). Set false if you manage schemas yourself:
   * apply {@link postgresMigrationSql} in your migrations instead.
   */
  createTable?: boolean;
}

/** A PostgreSQL store: a Store, plus a cheap purge of expired rows. */
export interface PostgresStore extends Store {
  /** Deletes expired rows (reads already ignore them); returns how many. Run it now and then. */
  purgeExpired(): Promise<number>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const PAGE = 500;
const CONNECTION_ERROR = /^(08|57P0[123]|53300)/;

/** The SQL that creates the store's table, for users who manage their schema by migrations. */
export function postgresMigrationSql(options: { table?: string; schema?: string } = {}): string {
  const t = qualified(options);
  const index = quote(`${options.table ?? 'tokenkeeper_records'}_expires_at`);
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (`,
    `  key text COLLATE "C" PRIMARY KEY,`,
    '  value text NOT NULL,',
    '  version bigint NOT NULL,',
    '  expires_at bigint',
    ');',
    `CREATE INDEX IF NOT EXISTS ${index} ON ${t} (expires_at) WHERE expires_at IS NOT NULL;`,
  ].join('\n');
}

/**
 * A store in PostgreSQL, on `pg`. One row per record; parameterised SQL only; a version column
 * for compare-and-set; TTL by an `expires_at` column that reads respect (and
 * {@link PostgresStore.purgeExpired} clears); listing by keyset pagination (constant memory).
 * The lock is a session-level advisory lock held on a connection of its own: it ends when its
 * lease does, and at once if that connection or its process dies.
 *
 * @example
 * import { postgresStore } from 'tokenkeeper/postgres';
 * const store = postgresStore({ connectionString: process.env.DATABASE_URL! });
 */
export function postgresStore(connection: PostgresConnection, options: PostgresStoreOptions = {}): PostgresStore {
  if (typeof connection !== 'object' || connection === null || (!connection.pool && !connection.connectionString)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'postgresStore() needs { pool } or { connectionString }.',
    );
  }
  const table = qualified(options);
  const owned = connection.pool === undefined;
  const pool =
    connection.pool ??
    new pg.Pool({
      connectionString: connection.connectionString,
      connectionTimeoutMillis: 5_000, // an unreachable server is an error within seconds, not a hang
      query_timeout: 15_000,
      max: 10,
    });
  if (owned) pool.on('error', () => {}); // an idle connection that died is replaced on next use
  const name = `postgres:${table}`;
  let ready: Promise<void> | undefined;
  let closed = false;
  const held = new Set<pg.PoolClient>();

  const prepare = (): Promise<void> => {
    if (closed) return Promise.reject(closedError(name));
    if (options.createTable === false) return Promise.resolve();
    ready ??= (async () => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        // Concurrent first uses (several processes starting) must not race on CREATE TABLE.
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`tokenkeeper:migrate:${table}`]);
        await client.query(postgresMigrationSql(options));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    })().catch((error) => {
      ready = undefined;
      throw pgError(error, name);
    });
    return ready;
  };

  /** Runs a query; reads are retried once on a broken connection (the pool gives a new one). */
  const query = async (key: string | undefined, sql: string, params: unknown[], read = false) => {
    await prepare();
    for (let attempt = 1; ; attempt++) {
      try {
        return await pool.query(sql, params);
      } catch (error) {
        if (read && attempt === 1 && isConnectionError(error)) continue;
        throw pgError(error, name, key);
      }
    }
  };

  const currentVersion = async (key: string): Promise<number> => {
    const r = await query(
      key,
      `SELECT version FROM ${table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)`,
      [key, Date.now()],
    );
    return r.rows.length ? Number(r.rows[0].version) : 0;
  };

  return {
    name,
    capabilities: { crossProcessLock: true },

    async get(key: string): Promise<StoreEntry | undefined> {
      assertValidKey(key);
      const r = await query(
        key,
        `SELECT value, version, expires_at FROM ${table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)`,
        [key, Date.now()],
        true,
      );
      return r.rows.length ? rowEntry(key, table, r.rows[0]) : undefined;
    },

    async set(key: string, value: StoreRecord, setOptions?: SetOptions): Promise<number> {
      assertValidKey(key);
      const now = Date.now();
      const expiresAt = checkSetOptions(setOptions, now) ?? null;
      const json = JSON.stringify(copyRecord(value));
      const ifVersion = setOptions?.ifVersion;
      let r: pg.QueryResult;
      if (ifVersion === undefined) {
        r = await query(
          key,
          `INSERT INTO ${table} AS t (key, value, version, expires_at) VALUES ($1, $2, 1, $3)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = t.version + 1, expires_at = EXCLUDED.expires_at
           RETURNING version`,
          [key, json, expiresAt],
        );
      } else if (ifVersion === 0) {
        // Only if absent, or present but expired (which reads treat as absent).
        r = await query(
          key,
          `INSERT INTO ${table} AS t (key, value, version, expires_at) VALUES ($1, $2, 1, $3)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = t.version + 1, expires_at = EXCLUDED.expires_at
           WHERE t.expires_at IS NOT NULL AND t.expires_at <= $4
           RETURNING version`,
          [key, json, expiresAt, now],
        );
      } else {
        r = await query(
          key,
          `UPDATE ${table} SET value = $2, version = version + 1, expires_at = $3
           WHERE key = $1 AND version = $4 AND (expires_at IS NULL OR expires_at > $5)
           RETURNING version`,
          [key, json, expiresAt, ifVersion, now],
        );
      }
      if (r.rows.length === 0) throw versionConflict(key, ifVersion as number, await currentVersion(key));
      return Number(r.rows[0].version);
    },

    async delete(key: string, deleteOptions?: DeleteOptions): Promise<boolean> {
      assertValidKey(key);
      checkDeleteOptions(deleteOptions);
      const now = Date.now();
      const ifVersion = deleteOptions?.ifVersion;
      const r =
        ifVersion === undefined
          ? await query(key, `DELETE FROM ${table} WHERE key = $1 RETURNING expires_at`, [key])
          : await query(
              key,
              `DELETE FROM ${table} WHERE key = $1 AND version = $2 AND (expires_at IS NULL OR expires_at > $3) RETURNING expires_at`,
              [key, ifVersion, now],
            );
      if (r.rows.length === 0) {
        if (ifVersion !== undefined && ifVersion !== 0)
          throw versionConflict(key, ifVersion, await currentVersion(key));
        return false;
      }
      const expired = r.rows[0].expires_at !== null && Number(r.rows[0].expires_at) <= now;
      return !expired;
    },

    async *keys(prefix = ''): AsyncIterable<string> {
      assertValidPrefix(prefix);
      // Keyset pagination in index order. Under COLLATE "C" the keys with one prefix are
      // contiguous, so the walk starts at the prefix and stops at the first key past it. No LIKE:
      // on a table without statistics it makes the planner sort the whole range for every page.
      let after = prefix;
      let first = true;
      for (;;) {
        const r = await query(
          undefined,
          `SELECT key FROM ${table} WHERE key ${first ? '>=' : '>'} $1 AND (expires_at IS NULL OR expires_at > $2)
           ORDER BY key LIMIT ${PAGE}`,
          [after, Date.now()],
          true,
        );
        for (const row of r.rows) {
          if (!(row.key as string).startsWith(prefix)) return;
          yield row.key as string;
        }
        if (r.rows.length < PAGE) return;
        after = r.rows[r.rows.length - 1].key;
        first = false;
      }
    },

    async lock(key: string, lockOpts?: LockOptions): Promise<Lease> {
      assertValidKey(key);
      lockOptions(lockOpts);
      await prepare();
      const lockName = `tokenkeeper:lock:${table}:${key}`;
      let client: pg.PoolClient | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let expiresAt = 0;
      let broken = false;

      const end = async () => {
        clearTimeout(timer);
        const c = client;
        client = undefined;
        if (c === undefined) return;
        held.delete(c);
        if (broken) return c.release(true);
        try {
          await c.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockName]);
          c.release();
        } catch (error) {
          c.release(error as Error); // a broken connection: its lock already ended with it
        }
      };
      const arm = (leaseMs: number) => {
        clearTimeout(timer);
        expiresAt = Date.now() + leaseMs;
        timer = setTimeout(() => void end(), leaseMs); // the lease ends even if nobody releases it
        timer.unref?.();
      };
      const tryTake = async (leaseMs: number): Promise<true | undefined> => {
        const c = await pool.connect().catch((error) => Promise.reject(pgError(error, name, key)));
        let got = false;
        try {
          const r = await c.query('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [lockName]);
          got = r.rows[0].ok === true;
        } catch (error) {
          c.release(error as Error);
          throw pgError(error, name, key);
        }
        if (!got) {
          c.release();
          return undefined;
        }
        client = c;
        broken = false;
        held.add(c);
        c.on('error', () => {
          broken = true; // terminated: PostgreSQL freed the lock with the connection
        });
        arm(leaseMs);
        return true;
      };

      await pollLock(key, lockOpts, tryTake);
      return {
        key,
        get expiresAt() {
          return expiresAt;
        },
        release: end,
        async extend(ms?: number) {
          const { leaseMs } = lockOptions({ leaseMs: ms ?? Math.max(1, expiresAt - Date.now()) });
          if (client !== undefined && !broken) {
            arm(leaseMs);
            return true;
          }
          // Ended: take it again if nobody else has.
          return (await tryTake(leaseMs).catch(() => undefined)) === true;
        },
      };
    },

    async purgeExpired(): Promise<number> {
      const r = await query(undefined, `DELETE FROM ${table} WHERE expires_at IS NOT NULL AND expires_at <= $1`, [
        Date.now(),
      ]);
      return r.rowCount ?? 0;
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const c of held) c.release(true);
      held.clear();
      if (owned) await pool.end().catch(() => {});
    },
  };
}

function quote(identifier: string): string {
  if (!IDENTIFIER.test(identifier)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${JSON.stringify(identifier)} is not a table or schema name tokenkeeper accepts (letters, digits, _; at most 63).`,
    );
  }
  return `"${identifier}"`;
}

function qualified(options: { table?: string; schema?: string }): string {
  const t = quote(options.table ?? 'tokenkeeper_records');
  return options.schema === undefined ? t : `${quote(options.schema)}.${t}`;
}

function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    (typeof e?.code === 'string' && (CONNECTION_ERROR.test(e.code) || e.code.startsWith('E'))) ||
    /Connection terminated|connection ended|not queryable/i.test(e?.message ?? '')
  );
}

function pgError(error: unknown, name: string, key?: string): unknown {
  if (error instanceof TokenkeeperError) return error;
  const e = error as { code?: string; message?: string };
  return new TokenkeeperError(
    'TOKENKEEPER_STORE_UNAVAILABLE',
    `PostgreSQL (${name}) failed: ${e?.code ? `${e.code} ` : ''}${String(e?.message ?? error).slice(0, 200)}. ` +
      'A write that failed this way may or may not have been applied; read before retrying a compare-and-set.',
    { cause: redactedCause(error), key },
  );
}
