import type Keyv from 'keyv';
import { redactedCause, TokenkeeperError } from '../../errors.js';
import { assertValidKey, assertValidPrefix, storeNamespace } from '../kit/keys.js';
import { LocalLocks } from '../kit/local-locks.js';
import {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  corruptRecord,
  isPlainObject,
} from '../kit/records.js';
import { planDelete, planSet, readStored, type Stored } from '../kit/write.js';
import type { DeleteOptions, Lease, LockOptions, SetOptions, Store, StoreEntry, StoreRecord } from '../types.js';

export interface KeyvStoreOptions {
  /** Your Keyv, on any backend. The store never disconnects it. */
  keyv: Keyv;
  /**
   * Keeps stores sharing one Keyv apart: every key starts with `<namespace>:` (Keyv's own
   * `namespace` applies on top). 1 to 40 letters, digits or `_`, starting with a letter.
   * Default: none.
   */
  namespace?: string;
}

/** What a record is stored as in keyv. */
interface Envelope {
  tk: 1;
  v: number;
  e: number | null;
  d: StoreRecord;
}

/**
 * Any keyv 5 backend as a store. keyv has no compare-and-set and no lock, so this store can
 * only promise what one process can enforce:
 *
 * - `lock` excludes callers in this process only (`capabilities.crossProcessLock` is false).
 * - Compare-and-set and version bumps are atomic within this process; two processes writing
 *   one key at the same moment can both succeed.
 * - Listing needs a backend with an iterator (most have one); others throw
 *   `TOKENKEEPER_STORE_UNAVAILABLE` from `keys()`.
 *
 * The session manager still refreshes once per process; across processes sharing a keyv
 * backend, two may refresh at once, and with refresh-token rotation one of them is then signed
 * out. For several processes, use the Redis, PostgreSQL, SQLite or file store.
 *
 * @example
 * import Keyv from 'keyv';
 * import { keyvStore } from 'tokenkeeper/keyv';
 * const store = keyvStore({ keyv: new Keyv(), namespace: 'tokens' });
 */
export function keyvStore(options: KeyvStoreOptions): Store;
/** @deprecated Pass one object: `keyvStore({ keyv })`. */
export function keyvStore(keyv: Keyv): Store;
export function keyvStore(given: KeyvStoreOptions | Keyv): Store {
  const legacy = typeof (given as Keyv)?.get === 'function';
  const options = (legacy ? { keyv: given } : given) as KeyvStoreOptions;
  const keyv = options?.keyv;
  if (typeof keyv !== 'object' || keyv === null || typeof (keyv as Keyv).get !== 'function') {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'keyvStore({ keyv }) needs a Keyv instance.');
  }
  const namespace = storeNamespace(options.namespace, 'keyvStore');
  /** What this store's keys start with inside the Keyv (after Keyv's own namespace). */
  const own = namespace === undefined ? '' : `${namespace}:`;
  const locks = new LocalLocks();
  const writes = new LocalLocks(); // serialises read-modify-write of one key in this process
  const name = `keyv:${keyv.namespace ?? ''}${namespace === undefined ? '' : `/${namespace}`}`;
  let closed = false;

  const open = () => {
    if (closed) throw closedError(name);
  };
  const call = async <T>(key: string | undefined, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw new TokenkeeperError(
        'TOKENKEEPER_STORE_UNAVAILABLE',
        `The keyv backend (${name}) failed: ${String((error as Error)?.message ?? error).slice(0, 200)}.`,
        { cause: redactedCause(error), key },
      );
    }
  };
  const read = async (key: string): Promise<Envelope | undefined> => {
    const raw = await call(key, () => keyv.get(own + key));
    if (raw === undefined || raw === null) return undefined;
    const env = raw as Envelope;
    if (env?.tk !== 1 || !Number.isSafeInteger(env.v) || env.v < 1 || !isPlainObject(env.d)) {
      throw corruptRecord(key, name, 'value', 'written by another program through the same Keyv?');
    }
    if (env.e !== null && env.e <= Date.now()) return undefined; // a backend without TTL support
    return env;
  };
  const guarded = async <T>(key: string, fn: (stored: Stored) => Promise<T>): Promise<T> => {
    const lease = await writes.acquire(key, { leaseMs: 30_000, waitMs: 30_000 });
    try {
      const stored = await readStored(async () => {
        const env = await read(key);
        return env && { version: env.v };
      });
      return await fn(stored);
    } finally {
      await lease.release();
    }
  };

  return {
    name,
    capabilities: { crossProcessLock: false },

    async get(key: string): Promise<StoreEntry | undefined> {
      open();
      assertValidKey(key);
      const env = await read(key);
      if (env === undefined) return undefined;
      return env.e === null ? { value: env.d, version: env.v } : { value: env.d, version: env.v, expiresAt: env.e };
    },

    async set(key: string, value: StoreRecord, setOptions?: SetOptions): Promise<number> {
      open();
      assertValidKey(key);
      checkSetOptions(setOptions, Date.now());
      const d = copyRecord(value);
      return guarded(key, async (stored) => {
        const env: Envelope = {
          tk: 1,
          v: planSet(key, stored, setOptions),
          e: checkSetOptions(setOptions, Date.now()) ?? null,
          d,
        };
        const ttl = setOptions?.ttlMs === undefined ? undefined : Math.ceil(setOptions.ttlMs);
        await call(key, () => keyv.set(own + key, env, ttl));
        return env.v;
      });
    },

    async delete(key: string, deleteOptions?: DeleteOptions): Promise<boolean> {
      open();
      assertValidKey(key);
      checkDeleteOptions(deleteOptions);
      return guarded(key, async (stored) => {
        const live = planDelete(key, stored, deleteOptions);
        const existed = await call(key, () => keyv.delete(own + key));
        return existed && live;
      });
    },

    async *keys(prefix = ''): AsyncIterable<string> {
      open();
      assertValidPrefix(prefix);
      if (typeof keyv.iterator !== 'function') {
        throw new TokenkeeperError(
          'TOKENKEEPER_STORE_UNAVAILABLE',
          `This keyv backend (${name}) cannot list its keys (it has no iterator).`,
        );
      }
      for await (const [key, value] of keyv.iterator(keyv.namespace) as AsyncGenerator<[string, unknown]>) {
        if (typeof key !== 'string' || !key.startsWith(own + prefix)) continue;
        const env = value as Envelope | undefined;
        if (env?.tk === 1 && env.e !== null && env.e <= Date.now()) continue;
        yield key.slice(own.length);
      }
    },

    lock(key: string, options?: LockOptions): Promise<Lease> {
      if (closed) return Promise.reject(closedError(name));
      return locks.acquire(key, options);
    },

    async close(): Promise<void> {
      closed = true;
    },
  };
}
