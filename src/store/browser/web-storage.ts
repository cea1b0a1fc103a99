import { TokenkeeperError } from '../../errors.js';
import { assertValidKey, assertValidPrefix, checkNamespace, namespaceOrAlias } from '../kit/keys.js';
import { LocalLocks } from '../kit/local-locks.js';
import {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  corruptRecord,
  isPlainObject,
  parseJson,
  sleep,
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
import { browserStorageError } from './errors.js';
import { idbFactory, lazyDatabase, transact } from './indexeddb.js';
import { browserLocks, type LockFence, WebLocks } from './web-locks.js';

export interface WebStorageStoreOptions {
  /** The Web Storage to keep records in (default `localStorage`), say `sessionStorage`. */
  storage?: WebStorage;
  /**
   * Keeps stores sharing one storage apart (default `tokenkeeper`), and this store's entries
   * apart from the rest of the page's: entries are `<namespace>:r:<key>`, plus one
   * `<namespace>:version` counter. 1 to 40 letters, digits or `_`, starting with a letter.
   */
  namespace?: string;
  /** @deprecated Use `namespace`. The same, with the looser rules of 0.1 (anything but `:`). */
  prefix?: string;
  /**
   * Take locks with the Web Locks API (plus an IndexedDB fence). Default: whenever the page has
   * both. Without them the lock only excludes callers in this tab (`capabilities.crossProcessLock`
   * is false): two tabs can then renew one session at once, and the second is refused by a server
   * that rotates refresh tokens. Use {@link indexedDbStore} there: its fallback is cross-tab.
   */
  webLocks?: boolean;
}

/** The part of the Web Storage API (`localStorage`, `sessionStorage`) the store uses. */
export type WebStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem' | 'key' | 'length'>;

interface Entry {
  /** version */
  v: number;
  /** expiry, ms since the epoch, or null */
  e: number | null;
  /** the record */
  r: StoreRecord;
}

/**
 * A store in `localStorage` (the default) or `sessionStorage`: synchronous, small (about 5 MB per
 * origin) and readable by every script of the page. Each read and each check-and-write runs
 * without a pause, so it is atomic within a tab.
 *
 * Across tabs there is no transaction: browsers copy localStorage writes to other tabs
 * asynchronously. The store's lock therefore pairs a Web Lock with a fence kept in IndexedDB, so
 * the next holder reads only after the last holder's writes reached it; a compare-and-set is
 * safe under that lock, which is how the session manager writes. Without Web Locks or IndexedDB
 * the lock covers this tab only (`capabilities.crossProcessLock` is false). Browsers also write
 * localStorage to disk lazily: a browser crash right after a refresh can lose the new token.
 * {@link indexedDbStore} has real transactions and durable commits: prefer it for sessions.
 *
 * @example
 * const store = webStorageStore(); // localStorage, entries under "tokenkeeper:"
 * const tabOnly = webStorageStore({ storage: sessionStorage, namespace: 'myapp' });
 * @throws TokenkeeperError `TOKENKEEPER_STORE_UNAVAILABLE` when storage is disabled or missing,
 *   `TOKENKEEPER_STORE_FULL` (from `set`) when the quota is used up.
 */
export function webStorageStore(options?: WebStorageStoreOptions): Store;
/** @deprecated Pass one object: `webStorageStore({ storage, namespace })`. */
export function webStorageStore(storage: WebStorage | undefined, options?: WebStorageStoreOptions): Store;
export function webStorageStore(
  first?: WebStorage | WebStorageStoreOptions,
  second: WebStorageStoreOptions = {},
): Store {
  // The 0.1 form passed the storage first; a Storage has getItem, an options object does not.
  const legacy = first !== undefined && typeof (first as WebStorage)?.getItem === 'function';
  const options = (legacy || first === undefined ? second : first) as WebStorageStoreOptions;
  if (typeof options !== 'object' || options === null) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'webStorageStore(options): options must be an object.');
  }
  const area = (legacy ? (first as WebStorage) : options.storage) ?? defaultStorage();
  if (
    typeof area !== 'object' ||
    area === null ||
    !['getItem', 'setItem', 'removeItem', 'key'].every(
      (m) => typeof (area as unknown as Record<string, unknown>)[m] === 'function',
    )
  ) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'webStorageStore(storage): storage must be a Web Storage object such as localStorage.',
    );
  }
  const { namespace, alias } = namespaceOrAlias<string>(options, 'prefix', 'webStorageStore');
  const prefix = namespace ?? checkNamespace(alias ?? 'tokenkeeper', 'webStorageStore()');
  const recordPrefix = `${prefix}:r:`;
  const counterKey = `${prefix}:version`;
  const counter = (): number => Number(area.getItem(counterKey)) || 0;
  // Cross-tab locking needs Web Locks, and IndexedDB for the fence (see storageFence).
  let web = options.webLocks === false ? undefined : browserLocks();
  let fence: LockFence | undefined;
  if (web !== undefined) {
    try {
      fence = storageFence(idbFactory(undefined, 'the lock fence'), `${prefix}:`, counter);
    } catch {
      web = undefined;
    }
  }
  if (options.webLocks === true && web === undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_STORE_UNAVAILABLE',
      'webStorageStore({ webLocks: true }): this page has no navigator.locks (it needs a secure context) or no IndexedDB.',
    );
  }
  const locks = web ? new WebLocks(web, `tokenkeeper:ls:${prefix}:`, fence) : new LocalLocks();
  const where = `web storage under ${JSON.stringify(`${prefix}:`)}`;
  const name = `webstorage:${prefix}`;
  const listeners = new Set<ChangeListener>();
  let closed = false;

  const open = () => {
    if (closed) throw closedError(name);
  };
  const io = <T>(fn: () => T, key?: string): T => {
    try {
      return fn();
    } catch (error) {
      throw browserStorageError(error, where, key);
    }
  };
  /** The live entry `text` holds for `key`, removing it if it expired. */
  const parse = (key: string, text: string, now: number): Entry | undefined => {
    const entry = parseJson(text) as Entry | undefined;
    if (
      !isPlainObject(entry) ||
      !Number.isSafeInteger(entry.v) ||
      entry.v < 1 ||
      !isPlainObject(entry.r) ||
      (entry.e !== null && typeof entry.e !== 'number')
    ) {
      throw corruptRecord(key, where, 'entry');
    }
    if (entry.e !== null && entry.e <= now) {
      io(() => area.removeItem(recordPrefix + key));
      return undefined;
    }
    return entry;
  };
  const textOf = (key: string): string | null => io(() => area.getItem(recordPrefix + key));
  /** What is stored under `key`, read once: its text, and what a write finds there. */
  const probe = (key: string, now: number): { text: string | null; stored: Stored } => {
    const text = textOf(key);
    if (text === null) return { text, stored: undefined };
    const stored = readStoredSync(() => {
      const entry = parse(key, text, now);
      return entry && { version: entry.v };
    });
    return { text, stored };
  };

  const onStorage = (event: StorageEvent) => {
    if (event.storageArea !== (area as unknown) || listeners.size === 0) return;
    if (event.key === null) {
      for (const listener of listeners) listener(undefined); // storage.clear()
    } else if (event.key.startsWith(recordPrefix)) {
      const key = event.key.slice(recordPrefix.length);
      for (const listener of listeners) listener(key);
    }
  };
  const target = globalThis as {
    addEventListener?: typeof addEventListener;
    removeEventListener?: typeof removeEventListener;
  };

  return {
    name,
    capabilities: { crossProcessLock: web !== undefined },

    async get(key: string): Promise<StoreEntry | undefined> {
      open();
      assertValidKey(key);
      const text = textOf(key);
      const entry = text === null ? undefined : parse(key, text, Date.now());
      if (entry === undefined) return undefined;
      return entry.e === null
        ? { value: entry.r, version: entry.v }
        : { value: entry.r, version: entry.v, expiresAt: entry.e };
    },

    async set(key: string, value: StoreRecord, options?: SetOptions): Promise<number> {
      open();
      assertValidKey(key);
      const now = Date.now();
      const expiresAt = checkSetOptions(options, now);
      const record = copyRecord(value);
      const { text: previous, stored } = probe(key, now);
      const version = planSet(key, stored, options, io(counter)); // never repeats for a key, even after a delete
      const text = JSON.stringify({ v: version, e: expiresAt ?? null, r: record } satisfies Entry);
      io(() => area.setItem(recordPrefix + key, text), key);
      // The counter after the record: a tab that sees the counter has seen the record (the lock
      // fence relies on it). If the counter does not fit, the record is put back as it was.
      try {
        area.setItem(counterKey, String(version));
      } catch (error) {
        try {
          if (previous === null) area.removeItem(recordPrefix + key);
          else area.setItem(recordPrefix + key, previous);
        } catch {}
        throw browserStorageError(error, where, key);
      }
      return version;
    },

    async delete(key: string, options?: DeleteOptions): Promise<boolean> {
      open();
      assertValidKey(key);
      checkDeleteOptions(options);
      const live = planDelete(key, probe(key, Date.now()).stored, options); // a corrupt entry goes too
      io(() => area.removeItem(recordPrefix + key));
      try {
        area.setItem(counterKey, String(counter() + 1)); // deletes count too, for the lock fence
      } catch {}
      return live;
    },

    async *keys(prefix = ''): AsyncIterable<string> {
      open();
      assertValidPrefix(prefix);
      // Storage can only be walked by index, and indexes shift as others write: take the matching
      // names first (localStorage is a few MB at most), then yield those still there.
      const start = recordPrefix + prefix;
      const names: string[] = [];
      io(() => {
        for (let i = 0; i < area.length; i++) {
          const k = area.key(i);
          if (k?.startsWith(start)) names.push(k.slice(recordPrefix.length));
        }
      });
      for (const key of names) {
        // A corrupt entry is listed, so it can be found and deleted.
        if (probe(key, Date.now()).stored !== undefined) yield key;
      }
    },

    lock(key: string, options?: LockOptions): Promise<Lease> {
      if (closed) return Promise.reject(closedError(name));
      return locks.acquire(key, options);
    },

    watch(listener: ChangeListener): () => void {
      if (listeners.size === 0 && !closed) target.addEventListener?.('storage', onStorage);
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) target.removeEventListener?.('storage', onStorage);
      };
    },

    async close(): Promise<void> {
      closed = true;
      listeners.clear();
      target.removeEventListener?.('storage', onStorage);
    },
  };
}

const FENCES = 'fences';
const FENCE_WAIT_MS = 2_000;

/**
 * Browsers copy a tab's localStorage writes to other tabs asynchronously, and a Web Lock can
 * reach the next tab before the writes its holder made (measured: without this, five tabs
 * refreshing one session replay its refresh token). So the holder, before freeing the lock,
 * records in IndexedDB (consistent across tabs) the store's write counter as it sees it; the next
 * holder waits until its own copy of localStorage has reached that counter. The counter is
 * written after every record, so reaching it means seeing the record. A counter that never
 * arrives (the user cleared storage) stops the wait after 2 s.
 */
function storageFence(factory: IDBFactory, scope: string, counter: () => number): LockFence {
  const database = lazyDatabase(
    factory,
    'tokenkeeper-fences',
    [FENCES],
    'IndexedDB (the lock fence of the web storage store)',
  );
  return {
    async mark(key) {
      const seen = counter();
      await transact(
        await database.open(),
        [FENCES],
        'readwrite',
        (tx, finish) => {
          tx.objectStore(FENCES).put(seen, scope + key);
          finish(undefined);
        },
        'relaxed',
      ); // only tabs alive now read it: no need to wait for the disk
    },
    async wait(key) {
      const expected = await transact<unknown>(await database.open(), [FENCES], 'readonly', (tx, finish) => {
        tx.objectStore(FENCES).get(scope + key).onsuccess = (e) => finish((e.target as IDBRequest).result);
      });
      if (typeof expected !== 'number') return;
      const deadline = Date.now() + FENCE_WAIT_MS;
      while (counter() < expected && Date.now() < deadline) await sleep(2);
    },
  };
}

function defaultStorage(): WebStorage {
  let storage: WebStorage | undefined;
  try {
    storage = (globalThis as { localStorage?: WebStorage }).localStorage;
  } catch (error) {
    throw browserStorageError(error, 'localStorage');
  }
  if (storage === undefined || storage === null) {
    throw new TokenkeeperError(
      'TOKENKEEPER_STORE_UNAVAILABLE',
      'There is no localStorage here: pass a Storage to webStorageStore(), or use fileStore in Node.',
    );
  }
  return storage;
}
