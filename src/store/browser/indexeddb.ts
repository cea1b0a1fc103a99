import { TokenkeeperError } from '../../errors.js';
import { assertValidKey, assertValidPrefix, namespaceOrAlias } from '../kit/keys.js';
import { createLease } from '../kit/lease.js';
import {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  corruptRecord,
  randomToken,
  rowEntry,
} from '../kit/records.js';
import { planDelete, planSet, readStoredSync, type Stored } from '../kit/write.js';
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
import { ChangeChannel } from './channel.js';
import { browserStorageError } from './errors.js';
import { browserLocks, WebLocks } from './web-locks.js';

export interface IndexedDbStoreOptions {
  /**
   * Keeps stores of one origin apart (default `tokenkeeper`): the name of the IndexedDB
   * database. 1 to 40 letters, digits or `_`, starting with a letter.
   */
  namespace?: string;
  /** @deprecated Use `namespace`. The database's exact name. */
  name?: string;
  /**
   * Take locks with the Web Locks API (`navigator.locks`). Default: whenever the page has it.
   * Without it (`false`, or a page outside a secure context) the lock is a lease row written in
   * an IndexedDB transaction and polled: still one holder across tabs, but a tab closed while
   * holding it blocks the others until its lease ends.
   */
  webLocks?: boolean;
  /** The IndexedDB factory (default `globalThis.indexedDB`), say a worker's or a test double's. */
  indexedDB?: IDBFactory;
}

const RECORDS = 'records';
const META = 'meta';
const LEASES = 'leases';
const PAGE = 256;

interface Row {
  /** The key again, so `getAll` pages carry it. */
  k: string;
  /** The record as JSON text: what is read back is always a copy. */
  value: string;
  version: number;
  expires_at: number | null;
}

interface LeaseRow {
  token: string;
  expiresAt: number;
}

/**
 * A store in the browser's IndexedDB: transactional, so every write is atomic and a version
 * check and its write happen as one step across all tabs. Works in pages and workers; no Node.
 *
 * - Each write is committed with `durability: 'strict'` (flushed to disk before it resolves), so
 *   a renewed refresh token survives a browser crash.
 * - Its lock uses Web Locks when present: exactly one tab of the origin renews a session, and a
 *   tab that closes mid-renewal frees it at once (see {@link IndexedDbStoreOptions.webLocks}).
 * - Writes are announced on a `BroadcastChannel`, so `watch` tells other tabs what changed.
 *
 * @example
 * const manager = new SessionManager({ store: indexedDbStore(), issuer, client: { clientId } });
 * @throws TokenkeeperError `TOKENKEEPER_STORE_UNAVAILABLE` when IndexedDB is missing or disabled
 *   (from the call that first needs it), `TOKENKEEPER_STORE_FULL` when the origin's quota is used up.
 */
export function indexedDbStore(options: IndexedDbStoreOptions = {}): Store {
  if (typeof options !== 'object' || options === null) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'indexedDbStore(options) takes an options object.');
  }
  const { namespace, alias } = namespaceOrAlias<string>(options, 'name', 'indexedDbStore');
  const dbName = alias ?? namespace ?? 'tokenkeeper';
  if (typeof dbName !== 'string' || dbName.length === 0 || dbName.length > 200) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'indexedDbStore: name must be a non-empty string.');
  }
  const where = `IndexedDB database ${JSON.stringify(dbName)}`;
  const idb = idbFactory(options.indexedDB, where);
  const webLocks = options.webLocks === false ? undefined : browserLocks();
  if (options.webLocks === true && webLocks === undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_STORE_UNAVAILABLE',
      'indexedDbStore({ webLocks: true }): this page has no navigator.locks (it needs a secure context).',
    );
  }
  const locks = webLocks ? new WebLocks(webLocks, `tokenkeeper:idb:${dbName}:`) : undefined;
  const channel = new ChangeChannel(`tokenkeeper:idb:${dbName}`);
  const name = `indexeddb:${dbName}`;
  const database = lazyDatabase(idb, dbName, [RECORDS, META, LEASES], where);
  let closed = false;

  const run = async <T>(
    stores: string[],
    mode: IDBTransactionMode,
    body: (tx: IDBTransaction, finish: (value: T) => void, fail: (error: unknown) => void) => void,
    key?: string,
  ): Promise<T> => {
    if (closed) throw closedError(name);
    const opened = await database.open();
    if (closed) throw closedError(name);
    try {
      return await transact(opened, stores, mode, body);
    } catch (error) {
      throw browserStorageError(error, where, mode === 'readwrite' ? key : undefined);
    }
  };

  const entryOf = (key: string, row: Row | undefined, now: number): StoreEntry | undefined => {
    if (row === undefined) return undefined;
    if (typeof row !== 'object' || row === null || typeof row.value !== 'string') {
      throw corruptRecord(key, where, 'row');
    }
    if (row.expires_at !== null && row.expires_at <= now) return undefined;
    return rowEntry(key, where, row);
  };

  const storedOf = (key: string, row: Row | undefined, now: number): Stored =>
    readStoredSync(() => entryOf(key, row, now));

  // Where there are no Web Locks (an insecure context, webLocks: false): a lease row, polled. Its
  // code loads only then.
  const idbLock = async (key: string, options?: LockOptions): Promise<Lease> => {
    assertValidKey(key);
    const { pollLock } = await import('../kit/poll-lock.js');
    return pollLock(key, options, async (leaseMs) => {
      const token = randomToken();
      const takenAt = Date.now();
      const got = await run<boolean>([LEASES], 'readwrite', (tx, finish) => {
        const leases = tx.objectStore(LEASES);
        leases.get(key).onsuccess = (e) => {
          const held = (e.target as IDBRequest<LeaseRow | undefined>).result;
          if (held !== undefined && held.expiresAt > Date.now()) return finish(false);
          leases.put({ token, expiresAt: Date.now() + leaseMs } satisfies LeaseRow, key);
          finish(true);
        };
      });
      return got ? leaseRow(key, token, leaseMs, takenAt) : undefined;
    });
  };

  const leaseRow = (key: string, token: string, leaseMs: number, takenAt: number): Lease => {
    const update = (next: LeaseRow | undefined) =>
      run<boolean>([LEASES], 'readwrite', (tx, finish) => {
        const leases = tx.objectStore(LEASES);
        leases.get(key).onsuccess = (e) => {
          const held = (e.target as IDBRequest<LeaseRow | undefined>).result;
          if (held?.token !== token) return finish(false); // released, or taken after it ran out
          if (next === undefined) leases.delete(key);
          else leases.put(next, key);
          finish(true);
        };
      });
    return createLease(key, leaseMs, takenAt, {
      release: async () => {
        await update(undefined).catch(() => {});
      },
      renew: (ms) => update({ token, expiresAt: Date.now() + ms }),
    });
  };

  return {
    name,
    capabilities: { crossProcessLock: true },

    async get(key: string): Promise<StoreEntry | undefined> {
      if (closed) throw closedError(name);
      assertValidKey(key);
      const row = await run<Row | undefined>([RECORDS], 'readonly', (tx, finish) => {
        tx.objectStore(RECORDS).get(key).onsuccess = (e) => finish((e.target as IDBRequest<Row | undefined>).result);
      });
      return entryOf(key, row, Date.now());
    },

    async set(key: string, value: StoreRecord, options?: SetOptions): Promise<number> {
      if (closed) throw closedError(name);
      assertValidKey(key);
      const now = Date.now();
      const expiresAt = checkSetOptions(options, now);
      const json = JSON.stringify(copyRecord(value));
      const version = await run<number>(
        [RECORDS, META],
        'readwrite',
        (tx, finish, fail) => {
          const records = tx.objectStore(RECORDS);
          const meta = tx.objectStore(META);
          // Both reads at once; requests of one transaction complete in order, so the second
          // one's success sees both results.
          const read = records.get(key) as IDBRequest<Row | undefined>;
          meta.get('version').onsuccess = (m) => {
            const row = read.result;
            const last = Number((m.target as IDBRequest<unknown>).result) || 0;
            let next: number;
            try {
              // Never repeats, even after a delete: past the highest version this database gave out.
              next = planSet(key, storedOf(key, row, now), options, Math.max(last, Number(row?.version) || 0));
            } catch (error) {
              return fail(error);
            }
            meta.put(next, 'version');
            records.put({ k: key, value: json, version: next, expires_at: expiresAt ?? null } satisfies Row, key);
            finish(next);
          };
        },
        key,
      );
      channel.announce(key);
      return version;
    },

    async delete(key: string, options?: DeleteOptions): Promise<boolean> {
      if (closed) throw closedError(name);
      assertValidKey(key);
      checkDeleteOptions(options);
      const removed = await run<boolean>(
        [RECORDS],
        'readwrite',
        (tx, finish, fail) => {
          const records = tx.objectStore(RECORDS);
          records.get(key).onsuccess = (e) => {
            const row = (e.target as IDBRequest<Row | undefined>).result;
            let live: boolean;
            try {
              live = planDelete(key, storedOf(key, row, Date.now()), options);
            } catch (error) {
              return fail(error);
            }
            if (row !== undefined) records.delete(key);
            finish(live);
          };
        },
        key,
      );
      if (removed) channel.announce(key);
      return removed;
    },

    async *keys(prefix = ''): AsyncIterable<string> {
      if (closed) throw closedError(name);
      assertValidPrefix(prefix);
      // Keys sort by UTF-16 code units, so those with the prefix are one run starting at it.
      // Paged, one short transaction a page: an IndexedDB transaction cannot stay open while
      // the caller awaits between keys.
      let after: string | undefined;
      for (;;) {
        const range = after === undefined ? IDBKeyRange.lowerBound(prefix) : IDBKeyRange.lowerBound(after, true);
        const rows = await run<Row[]>([RECORDS], 'readonly', (tx, finish) => {
          tx.objectStore(RECORDS).getAll(range, PAGE).onsuccess = (e) => finish((e.target as IDBRequest<Row[]>).result);
        });
        const now = Date.now();
        for (const row of rows) {
          if (typeof row?.k !== 'string' || !row.k.startsWith(prefix)) return;
          if (row.expires_at === null || row.expires_at > now) yield row.k;
        }
        if (rows.length < PAGE) return;
        after = (rows[rows.length - 1] as Row).k;
      }
    },

    async lock(key: string, options?: LockOptions): Promise<Lease> {
      if (closed) throw closedError(name);
      return locks ? locks.acquire(key, options) : idbLock(key, options);
    },

    watch(listener: ChangeListener): () => void {
      return channel.listen(listener);
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      channel.close();
      await database.close();
    },
  };
}

/** The IndexedDB factory to use, or a typed error saying why there is none. */
export function idbFactory(given: IDBFactory | undefined, where: string): IDBFactory {
  let factory: IDBFactory | undefined;
  try {
    factory = given ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  } catch (error) {
    throw browserStorageError(error, where); // some browsers throw when storage is blocked
  }
  if (factory === undefined || factory === null) {
    throw new TokenkeeperError(
      'TOKENKEEPER_STORE_UNAVAILABLE',
      `There is no IndexedDB here (${where}); in Node, use fileStore or a server store.`,
    );
  }
  return factory;
}

/**
 * A database opened on first use and kept open; opened again after another tab upgraded it (or
 * the browser closed it), and after a failed open. Open failures are typed (`where` names it).
 */
export function lazyDatabase(factory: IDBFactory, name: string, stores: string[], where: string) {
  let opening: Promise<IDBDatabase> | undefined;
  return {
    open(): Promise<IDBDatabase> {
      opening ??= openDatabase(factory, name, stores, () => {
        opening = undefined;
      }).catch((error: unknown) => {
        opening = undefined;
        throw browserStorageError(error, where);
      });
      return opening;
    },
    async close(): Promise<void> {
      const pending = opening;
      opening = undefined;
      if (pending) (await pending.catch(() => undefined))?.close();
    },
  };
}

/** Opens (creating at version 1) a database with these object stores, out-of-line keys. */
export function openDatabase(
  factory: IDBFactory,
  name: string,
  stores: string[],
  onStale: () => void,
): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = factory.open(name, 1);
    request.onupgradeneeded = () => {
      const database = request.result;
      for (const store of stores) {
        if (!database.objectStoreNames.contains(store)) database.createObjectStore(store);
      }
    };
    request.onsuccess = () => {
      const database = request.result;
      database.onversionchange = () => {
        database.close();
        onStale();
      };
      database.onclose = onStale; // the browser closed it (storage cleared by the user)
      resolve(database);
    };
    request.onerror = () => reject(request.error);
  });
}

/**
 * Runs `body` in one transaction and settles when it commits (not merely when the requests
 * succeed): `finish` sets the result, `fail` aborts the transaction with an error of ours.
 */
export function transact<T>(
  database: IDBDatabase,
  stores: string[],
  mode: IDBTransactionMode,
  body: (tx: IDBTransaction, finish: (value: T) => void, fail: (error: unknown) => void) => void,
  durability: IDBTransactionDurability = mode === 'readwrite' ? 'strict' : 'default',
): Promise<T> {
  return new Promise((resolve, reject) => {
    const tx = database.transaction(stores, mode, { durability });
    let result: T;
    let failure: unknown;
    tx.oncomplete = () => resolve(result);
    tx.onabort = () => reject(failure ?? tx.error ?? new DOMException('The transaction was aborted.', 'AbortError'));
    body(
      tx,
      (value) => {
        result = value;
      },
      (error) => {
        failure = error;
        tx.abort();
      },
    );
  });
}
