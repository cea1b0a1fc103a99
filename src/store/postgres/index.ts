import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import { redactedCause, TokenkeeperError } from '../../errors.js';
import { assertValidKey, assertValidPrefix, namespaceOrAlias } from '../kit/keys.js';
import { createLease } from '../kit/lease.js';
import { type HeldLock, heldLock } from '../kit/liveness.js';
import { pollLock, ReleaseWakeups } from '../kit/poll-lock.js';
import {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  corruptRecord,
  lockOptions,
  randomToken,
  rowEntry,
  versionConflict,
} from '../kit/records.js';
import { planDelete, readStored } from '../kit/write.js';
import type {
  ChangeListener,
  DeleteOptions,
  Lease,
  LockOptions,
  SetOptions,
  Store,
  StoreEntry,
  StoreRecord,
} from '../types.js';

export type PostgresConnection =
  | {
      /** Your `pg` Pool. The store never ends it. */
      pool: pg.Pool;
      connectionString?: never;
      poolSize?: never;
    }
  | {
      /** A connection string: the store makes (and on close, ends) its own pool. */
      connectionString: string;
      pool?: never;
      /** Connections in the store's own pool (default 10). */
      poolSize?: number;
    };

export interface PostgresStoreOptions {
  /**
   * Keeps stores sharing one database apart (default `tokenkeeper`): records live in the table
   * `<namespace>_records`, locks in `<namespace>_records_locks`. 1 to 40 letters, digits or `_`,
   * starting with a letter.
   */
  namespace?: string;
  /**
   * @deprecated Use `namespace`. The exact records table (`table: 'app_records'` is
   * `namespace: 'app'`); letters, digits and `_` only. Kept for stores created before 0.2.
   */
  table?: string;
  /** The schema of the table (default: the connection's search path). */
  schema?: string;
  /**
   * Create the table on first use (default true). Set false if you manage schemas yourself:
   * apply {@link postgresMigrationSql} in your migrations instead.
   */
  createTable?: boolean;
  /**
   * How long one store call may wait, in all, for a connection from a pool whose connections are
   * all busy (default 60 s, the session manager's lock wait). A burst of renewals queues behind a
   * small pool instead of failing after the pool's own wait (`connectionTimeoutMillis`, 5 s for
   * the store's pool); a server that cannot be reached still fails after that one wait.
   */
  poolWaitMs?: number;
}

/** A PostgreSQL store: a Store, plus a cheap purge of expired rows. */
export interface PostgresStore extends Store {
  /** Deletes expired rows (reads already ignore them); returns how many. Run it now and then. */
  purgeExpired(): Promise<number>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const MAX_TABLE = 63 - '_locks'.length;
const PAGE = 500;
const CONNECTION_ERROR = /^(08|57P0[123]|53300)/;

/** The SQL that creates the store's table, for users who manage their schema by migrations. */
export function postgresMigrationSql(options: { namespace?: string; table?: string; schema?: string } = {}): string {
  options = tableOptions(options, 'postgresMigrationSql');
  const t = qualified(options);
  const index = quote(`${options.table}_expires_at`);
  return [
    `CREATE TABLE IF NOT EXISTS ${lockTable(options)} (`,
    `  key text COLLATE "C" PRIMARY KEY,`,
    '  token text NOT NULL,',
    '  expires_at bigint NOT NULL,',
    '  pid integer,',
    '  host text',
    ');',
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
 * The lock is a lease row in a second table (`<table>_locks`), timed by PostgreSQL's clock: it
 * lives exactly as long as its lease, whatever happens to the connection that took it.
 *
 * @example
 * import { postgresStore } from 'tokenkeeper/postgres';
 * const store = postgresStore({ connectionString: process.env.DATABASE_URL! });
 */
export function postgresStore(options: PostgresConnection & PostgresStoreOptions): PostgresStore;
/** @deprecated Pass one object: `postgresStore({ pool, namespace })`. */
export function postgresStore(connection: PostgresConnection, options?: PostgresStoreOptions): PostgresStore;
export function postgresStore(
  connection: PostgresConnection & PostgresStoreOptions,
  more?: PostgresStoreOptions,
): PostgresStore {
  if (typeof connection !== 'object' || connection === null || (!connection.pool && !connection.connectionString)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'postgresStore() needs { pool } or { connectionString }.',
    );
  }
  if (more !== undefined && (typeof more !== 'object' || more === null)) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'postgresStore() options must be an object.');
  }
  const options = tableOptions({ ...connection, ...more }, 'postgresStore');
  const table = qualified(options);
  const owned = connection.pool === undefined;
  const poolSize = connection.poolSize ?? 10;
  const poolWaitMs = options.poolWaitMs ?? 60_000;
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'postgresStore({ poolSize }) must be a positive whole number.',
    );
  }
  if (typeof poolWaitMs !== 'number' || !(poolWaitMs >= 0) || !Number.isFinite(poolWaitMs)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'postgresStore({ poolWaitMs }) must be a non-negative number of milliseconds.',
    );
  }
  const pool =
    connection.pool ??
    new pg.Pool({
      connectionString: connection.connectionString,
      connectionTimeoutMillis: 5_000, // an unreachable server is an error within seconds, not a hang
      query_timeout: 15_000,
      max: poolSize,
    });
  listenForIdleErrors(pool);
  const name = `postgres:${table}`;
  let ready: Promise<void> | undefined;
  let closed = false;
  const locks = lockSql(lockTable(options));

  // Lock releases are announced with NOTIFY on a channel per table (["l", store, key]) and heard
  // on a connection of its own (LISTEN), made on first need and made again after it drops.
  const channel = `tk_${createHash('sha256').update(table).digest('hex').slice(0, 24)}`;
  const me = randomToken().slice(0, 12);
  const watchers = new Set<ChangeListener>();
  let listener: pg.Client | undefined;
  let listening = false;
  const listen = () => {
    if (listening || closed) return;
    listening = true;
    const connect = async (attempt: number): Promise<void> => {
      if (closed) return;
      const c = new pg.Client(
        connection.pool
          ? (connection.pool as { options?: pg.ClientConfig }).options
          : { connectionString: connection.connectionString },
      );
      c.on('error', () => {});
      c.on('end', () => {
        // A listening connection that dropped: listen again (polling covers the gap). One that
        // never got to listen is retried by its own attempt below, not here as well.
        if (listener !== c) return;
        listener = undefined;
        if (!closed) setTimeout(() => void connect(1), 500).unref?.();
      });
      c.on('notification', (n) => {
        let kind: unknown;
        let from: unknown;
        let key: unknown;
        try {
          [kind, from, key] = JSON.parse(n.payload ?? '') as unknown[];
        } catch {
          return;
        }
        if (kind !== 'l' || typeof key !== 'string') return;
        // A released renewal lock: the record was probably just written. Watchers hear it
        // first (a session engine then reads it instead of taking the lock), then lock waiters.
        if (from !== me) for (const watcher of watchers) watcher(key);
        lockWaiters.wake(key);
      });
      try {
        await c.connect();
        // Listening must never keep the process alive: only pending work does.
        (c as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
        await c.query(`LISTEN "${channel}"`);
        if (closed) await c.end();
        else listener = c;
      } catch {
        await c.end().catch(() => {});
        if (!closed && attempt < 5) setTimeout(() => void connect(attempt + 1), 500 * attempt).unref?.();
      }
    };
    void connect(1);
  };
  const lockWaiters = new ReleaseWakeups(
    () => listen(),
    () => listener !== undefined, // set once LISTEN succeeded, cleared when its connection ends
  );

  const prepare = (): Promise<void> => {
    if (closed) return Promise.reject(closedError(name));
    if (options.createTable === false) return Promise.resolve();
    ready ??= (async () => {
      const client = await pool.connect();
      // A checked-out client has no pool listener: without ours, a terminated backend would be an
      // unhandled 'error' event that kills the process.
      client.on('error', ignore);
      let failure: unknown;
      try {
        await client.query('BEGIN');
        // Concurrent first uses (several processes starting) must not race on CREATE TABLE.
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`tokenkeeper:migrate:${table}`]);
        await client.query(postgresMigrationSql(options));
        await client.query('COMMIT');
      } catch (error) {
        failure = error;
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.off('error', ignore);
        client.release(isConnectionError(failure) ? (failure as Error) : undefined);
      }
    })().catch((error) => {
      ready = undefined;
      throw pgError(error, name);
    });
    return ready;
  };

  /**
   * Runs a query; reads are retried once on a broken connection (the pool gives a new one). A
   * wait for a connection that timed out while the pool's connections all work (they are busy)
   * is waited again, up to `poolWaitMs` in all: a queue, not a failure.
   */
  const query = async (key: string | undefined, sql: string, params: unknown[], read = false) => {
    await prepare();
    const waitUntil = Date.now() + poolWaitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await pool.query(sql, params);
      } catch (error) {
        // A full pool: the wait was in its queue, behind connections that work. (A connection
        // that could not be made leaves the pool short of its size: that is the server failing.)
        const full = pool.totalCount >= ((pool as { options?: { max?: number } }).options?.max ?? 10);
        if (isPoolWait(error) && full && Date.now() < waitUntil && !closed) {
          attempt--;
          continue;
        }
        if (read && attempt === 1 && isConnectionError(error)) continue;
        throw pgError(error, name, key);
      }
    }
  };

  const readRow = async (key: string, read = false): Promise<StoreEntry | undefined> => {
    const r = await query(
      key,
      `SELECT value, version, expires_at FROM ${table} WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)`,
      [key, Date.now()],
      read,
    );
    return r.rows.length ? rowEntry(key, table, r.rows[0]) : undefined;
  };
  /** After a conditional write changed nothing: the conflict, or the corrupt row that stopped it. */
  const refused = async (key: string, ifVersion: number | undefined): Promise<TokenkeeperError> => {
    const stored = await readStored(() => readRow(key));
    if (stored !== undefined && 'corrupt' in stored) return stored.corrupt;
    return versionConflict(key, ifVersion as number, stored?.version ?? 0);
  };

  return {
    name,
    capabilities: { crossProcessLock: true },

    async get(key: string): Promise<StoreEntry | undefined> {
      assertValidKey(key);
      return readRow(key, true);
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
           WHERE ${RECORD_ROW}
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
          `UPDATE ${table} AS t SET value = $2, version = version + 1, expires_at = $3
           WHERE key = $1 AND version = $4 AND (expires_at IS NULL OR expires_at > $5) AND ${RECORD_ROW}
           RETURNING version`,
          [key, json, expiresAt, ifVersion, now],
        );
      }
      if (r.rows.length === 0) throw await refused(key, ifVersion);
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
              `DELETE FROM ${table} AS t WHERE key = $1 AND version = $2 AND (expires_at IS NULL OR expires_at > $3) AND ${RECORD_ROW}
               RETURNING expires_at`,
              [key, ifVersion, now],
            );
      if (r.rows.length === 0) {
        if (ifVersion === undefined) return false;
        // 0 over nothing: false; else the conflict, or the corrupt row that stopped the delete.
        return planDelete(key, await readStored(() => readRow(key)), deleteOptions);
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
      // LISTEN is connected on the first lock taken, not on the first wait: by the time a fleet's
      // waiters wait, announcements arrive, and they poll slowly from the start.
      listen();
      const token = randomToken();
      const host = hostname();
      // The lease is counted from before the query was sent, so the end we believe in is never
      // later than the end PostgreSQL enforces (its own clock, measured when the row was written).
      let takenAt = 0;
      let predecessor: Lease['predecessor'];
      const length = await pollLock(
        key,
        lockOpts,
        async (leaseMs) => {
          takenAt = Date.now();
          const r = await query(key, locks.takeLock, [key, token, leaseMs, process.pid, host], true);
          if (r.rows.length === 0) return undefined;
          // A new row: the last holder deleted its own. An updated one: its lease had run out.
          predecessor = r.rows[0].inserted ? 'released' : 'expired';
          return leaseMs;
        },
        async () => {
          const r = await query(key, locks.lockHolder, [key], true);
          const h = r.rows[0] as { pid: number | null; host: string | null; remaining: string } | undefined;
          if (h === undefined) return undefined;
          return { pid: h.pid ?? undefined, host: h.host ?? undefined, expiresAt: Date.now() + Number(h.remaining) };
        },
        lockWaiters.wakeFor(key),
      );
      return createLease(
        key,
        length,
        takenAt,
        {
          release: async () => {
            // else the lease ends by itself
            if (!closed)
              await query(key, locks.releaseLock, [key, token, channel, JSON.stringify(['l', me, key])], true);
          },
          // Only while the row still carries our token: if it does, nobody else held the lock since.
          renew: async (leaseMs) => (await query(key, locks.extendLock, [key, token, leaseMs], true)).rows.length > 0,
        },
        predecessor,
      );
    },

    async purgeExpired(): Promise<number> {
      const r = await query(undefined, `DELETE FROM ${table} WHERE expires_at IS NOT NULL AND expires_at <= $1`, [
        Date.now(),
      ]);
      return r.rowCount ?? 0;
    },

    /**
     * Calls `listener` with a key when another process released its lock on it: after a renewal,
     * the moment its record was written. (Other writes are not announced on PostgreSQL.)
     */
    watch(callback: ChangeListener): () => void {
      listen();
      watchers.add(callback);
      return () => watchers.delete(callback);
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      watchers.clear();
      lockWaiters.clear();
      // Bounded: during an outage end() waits for connections still being made or queried
      // (up to their own timeouts); close() settles anyway, and those end as their timeouts fire.
      await settleWithin(CLOSE_WAIT_MS, [listener?.end(), owned ? pool.end() : undefined]);
    },
  };
}

const ignore = () => {};

/** How long `close()` waits for the pool and the LISTEN connection to end. */
const CLOSE_WAIT_MS = 2_000;

async function settleWithin(ms: number, work: (Promise<unknown> | undefined)[]): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.all(work.map((p) => p?.catch(ignore))),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      (timer as { unref?: () => void }).unref?.();
    }),
  ]);
  clearTimeout(timer);
}
const listened = new WeakSet<pg.Pool>();

/**
 * pg emits 'error' on the pool when an idle connection dies (a failover, pg_terminate_backend),
 * and on a connection itself when the server terminates it between or around queries (pg-pool
 * listens only once per query, and a terminated backend can emit twice); with no listener Node
 * turns either into a crash. Failures reach callers through their queries, so one listener per
 * pool and one per connection, each added once, when it is created, are all that is needed.
 */
function listenForIdleErrors(pool: pg.Pool): void {
  if (listened.has(pool)) return;
  listened.add(pool);
  pool.on('error', ignore);
  pool.on('connect', (client) => client.on('error', ignore));
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

/**
 * The locks held now in a store's lock table, with the process and host that took each. Reads
 * only, on a connection of its own; for `tokenkeeper doctor`.
 */
export async function postgresLocks(
  connectionString: string,
  options: { namespace?: string } = {},
): Promise<HeldLock[]> {
  const locks = lockTable(tableOptions<{ namespace?: string; table?: string }>({ ...options }, 'postgresLocks'));
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5_000, query_timeout: 15_000 });
  client.on('error', () => {}); // surfaced by the query
  await client.connect();
  try {
    const { rows } = await client.query<{ key: string; pid: number | null; host: string | null; remaining: string }>(
      `SELECT key, pid, host, expires_at - ${NOW_MS} AS remaining FROM ${locks} ORDER BY key`,
    );
    return rows.map((r) => heldLock(r.key, r.pid, r.host, Number(r.remaining)));
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') return []; // no lock table yet: none ever taken
    throw error;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The options with `table` resolved from `namespace` (or its deprecated alias, `table`). */
function tableOptions<T extends { namespace?: string; table?: string }>(options: T, factory: string): T {
  const { namespace, alias } = namespaceOrAlias<string>(options, 'table', factory);
  return { ...options, namespace: undefined, table: alias ?? `${namespace ?? 'tokenkeeper'}_records` };
}

function qualified(options: { table?: string; schema?: string }, suffix = ''): string {
  const table = options.table ?? 'tokenkeeper_records';
  if (table.length > MAX_TABLE) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `The table name ${JSON.stringify(table.slice(0, 70))} is too long: at most ${MAX_TABLE} characters, so its lock table (${JSON.stringify('_locks')} appended) fits PostgreSQL's 63.`,
    );
  }
  const t = quote(`${table}${suffix}`);
  return options.schema === undefined ? t : `${quote(options.schema)}.${t}`;
}

/** The table of lock leases beside the records table. */
function lockTable(options: { table?: string; schema?: string }): string {
  return qualified(options, '_locks');
}

/** Milliseconds since the epoch by PostgreSQL's clock: every lease is timed by the server, never by a client. */
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

/**
 * The lock as a lease row. Taking it inserts a row, or takes over a row whose lease ended;
 * extending and releasing touch only a row that still carries the holder's random token. A
 * broken connection therefore never frees a lock early (an advisory lock would end with its
 * connection while the holder's refresh request is still in flight), and a crashed holder's
 * lease simply ends.
 */
function lockSql(locks: string) {
  return {
    takeLock: `INSERT INTO ${locks} AS l (key, token, expires_at, pid, host) VALUES ($1, $2, ${NOW_MS} + $3, $4, $5)
      ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at, pid = EXCLUDED.pid,
        host = EXCLUDED.host
      WHERE l.expires_at <= ${NOW_MS} OR l.token = EXCLUDED.token
      RETURNING expires_at, (xmax = 0) AS inserted`,
    extendLock: `UPDATE ${locks} SET expires_at = ${NOW_MS} + $3 WHERE key = $1 AND token = $2 RETURNING expires_at`,
    // Frees the lock only for its holder, and tells waiters (NOTIFY on commit) so they need not poll.
    releaseLock: `WITH d AS (DELETE FROM ${locks} WHERE key = $1 AND token = $2 RETURNING key)
      SELECT pg_notify($3, $4) FROM d`,
    lockHolder: `SELECT pid, host, expires_at - ${NOW_MS} AS remaining FROM ${locks} WHERE key = $1 AND expires_at > ${NOW_MS}`,
  };
}

/** pg-pool's "no connection came within connectionTimeoutMillis". */
function isPoolWait(error: unknown): boolean {
  return /timeout exceeded when trying to connect/i.test((error as { message?: string })?.message ?? '');
}

function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    (typeof e?.code === 'string' && (CONNECTION_ERROR.test(e.code) || e.code.startsWith('E'))) ||
    /Connection terminated|connection ended|not queryable/i.test(e?.message ?? '')
  );
}

/**
 * A row a write may replace: one the store wrote (a positive version, a JSON object). Casting a
 * value that is not JSON fails the statement with 22P02, which {@link pgError} reports as a
 * corrupt record; either way nothing is written over it.
 */
const RECORD_ROW = "t.version >= 1 AND jsonb_typeof(t.value::jsonb) = 'object'";

function pgError(error: unknown, name: string, key?: string): unknown {
  if (error instanceof TokenkeeperError) return error;
  const e = error as { code?: string; message?: string };
  if (e?.code === '22P02' && key !== undefined) return corruptRecord(key, name, 'row', 'its value is not JSON');
  return new TokenkeeperError(
    'TOKENKEEPER_STORE_UNAVAILABLE',
    `PostgreSQL (${name}) failed: ${e?.code ? `${e.code} ` : ''}${String(e?.message ?? error).slice(0, 200)}. ` +
      'A write that failed this way may or may not have been applied; read before retrying a compare-and-set.',
    { cause: redactedCause(error), key },
  );
}
