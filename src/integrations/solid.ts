import { type EncryptionOptions, encryptedStore } from '../codec/encrypted.js';
import { TokenkeeperError } from '../errors.js';
import { assertValidKey, checkNamespace } from '../store/kit/keys.js';
import { parseJson } from '../store/kit/records.js';
import type { Store } from '../store/types.js';

/** The storage interface of `@inrupt/solid-client-authn-*`: strings in and out. */
export interface IStorage {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

export interface SolidStorageOptions {
  /** Key prefix in the store (default `solid`; no `:`), so apps and tenants never meet. */
  namespace?: string;
  /**
   * Encrypt what the SDK stores (its session records hold the refresh token and the client
   * secret in clear). See `encryptedStore`.
   */
  encryption?: EncryptionOptions;
  /**
   * How long a value read stays cached in this object (default 500 ms). One session restore
   * reads the same key about 50 times; writes through this object refresh the cache at once.
   */
  cacheMs?: number;
}

/** The storage, plus what the SDK's multi-session helpers do, streamed from the store. */
export interface SolidStorage extends IStorage {
  /** Every registered session id, streamed in constant memory. */
  sessionIds(): AsyncIterable<string>;
  /** Deletes every session's data and its index entry; returns how many sessions. */
  clearSessions(): Promise<number>;
}

/** The key under which the SDK keeps its JSON array of session ids. */
export const SOLID_SESSION_INDEX = 'solidClientAuthn:registeredSessions';
const USER_PREFIX = 'solidClientAuthenticationUser:';

/**
 * An `IStorage` for `@inrupt/solid-client-authn-node` backed by any tokenkeeper store. Pass it
 * by name: `getSessionFromStorage(id, { storage })` (a storage passed positionally to the
 * current SDK is silently ignored).
 *
 * The SDK keeps its list of session ids as one JSON array that it reads, changes and writes
 * back: two processes logging in at once lose one of them. Here each id is a record of its own,
 * and the index follows the session records: whenever a session's record is written, its id is
 * put in the index (whatever this object saw before: a re-login under a used id, an id the app
 * chose), and an id leaves the index when the SDK deletes its session data, as its logout does.
 * Writes of the array only add ids (never one this object saw removed, so a stale array cannot
 * bring back a session another process logged out). Concurrent logins from any number of
 * processes lose none. Missing keys read as `undefined` (a `null` crashes the SDK).
 */
export function solidStorage(store: Store, options: SolidStorageOptions = {}): SolidStorage {
  const namespace = checkNamespace(options.namespace ?? 'solid', 'solidStorage()');
  const cacheMs = options.cacheMs ?? 500;
  if (typeof cacheMs !== 'number' || !Number.isFinite(cacheMs) || cacheMs < 0) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'solidStorage({ cacheMs }) must be a non-negative number.',
    );
  }
  const target = options.encryption ? encryptedStore(store, options.encryption) : store;
  const valueKey = (key: string) => {
    if (typeof key !== 'string' || key.length === 0) {
      throw new TokenkeeperError('TOKENKEEPER_INVALID_KEY', 'The Solid SDK passed an empty storage key.');
    }
    const k = `${namespace}:v:${key}`;
    assertValidKey(k);
    return k;
  };
  const indexPrefix = `${namespace}:idx:`;
  const cache = new Map<string, { value: string | undefined; until: number }>();
  // Every id this object has seen in the index. The SDK rewrites the whole array from a read
  // that may be stale; an id it writes that was seen before but is gone now was removed by
  // someone meanwhile, and must not come back. A new login's id is a fresh UUID, never seen.
  const seen = new Set<string>();

  const remember = (key: string, value: string | undefined) => {
    if (cacheMs > 0) cache.set(key, { value, until: Date.now() + cacheMs });
  };

  async function* sessionIds(): AsyncIterable<string> {
    for await (const key of target.keys(indexPrefix)) yield key.slice(indexPrefix.length);
  }

  const readIndex = async (): Promise<string> => {
    const ids: string[] = [];
    for await (const id of sessionIds()) {
      ids.push(id);
      seen.add(id);
    }
    return JSON.stringify(ids);
  };

  /**
   * Applies an index write as additions only: concurrent logins (each writing "what it read,
   * plus its own id") then lose none. Ids leave the index when the SDK deletes their session
   * data, which its logout and clear always do.
   */
  const writeIndex = async (json: string): Promise<void> => {
    const ids = parseJson(json);
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && id.length > 0)) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_RECORD',
        `The Solid SDK wrote ${SOLID_SESSION_INDEX} as something other than an array of ids.`,
      );
    }
    for (const id of ids as string[]) if (!seen.has(id)) await index(id);
  };

  /** Puts `id` in the index unless it is there (one conditional write: nothing is bumped). */
  const index = async (id: string): Promise<void> => {
    seen.add(id);
    try {
      await target.set(indexPrefix + id, { registered: Date.now() }, { ifVersion: 0 });
    } catch (error) {
      if ((error as { code?: string }).code !== 'TOKENKEEPER_VERSION_CONFLICT') throw error;
    }
  };

  const deleteValue = async (key: string): Promise<void> => {
    await target.delete(valueKey(key));
    if (key.startsWith(USER_PREFIX)) await target.delete(indexPrefix + key.slice(USER_PREFIX.length));
  };

  return {
    async get(key) {
      if (key === SOLID_SESSION_INDEX) return readIndex(); // never cached: listings stay exact
      const hit = cache.get(key);
      if (hit !== undefined && hit.until > Date.now()) return hit.value;
      const entry = await target.get(valueKey(key));
      const value = typeof entry?.value.v === 'string' ? entry.value.v : undefined; // never null
      remember(key, value);
      return value;
    },
    async set(key, value) {
      if (typeof value !== 'string') {
        throw new TokenkeeperError('TOKENKEEPER_INVALID_RECORD', 'An IStorage value must be a string.');
      }
      if (key === SOLID_SESSION_INDEX) return writeIndex(value);
      await target.set(valueKey(key), { v: value });
      remember(key, value);
      // The index follows the records: a session written is a session listed (and cleared).
      if (key.startsWith(USER_PREFIX) && key.length > USER_PREFIX.length) await index(key.slice(USER_PREFIX.length));
    },
    async delete(key) {
      if (key === SOLID_SESSION_INDEX) {
        for await (const id of sessionIds()) await target.delete(indexPrefix + id);
        return;
      }
      await deleteValue(key);
      remember(key, undefined);
    },
    sessionIds,
    async clearSessions() {
      let n = 0;
      for (;;) {
        const batch: string[] = [];
        for await (const id of sessionIds()) {
          batch.push(id);
          if (batch.length === 500) break;
        }
        if (batch.length === 0) break;
        for (const id of batch) {
          await deleteValue(USER_PREFIX + id);
          n++;
        }
      }
      cache.clear();
      return n;
    },
  };
}

/** Every session id registered in a {@link solidStorage}, streamed (the SDK's `getSessionIdFromStorageAll`, without the array). */
export function getSessionIdsFromStore(storage: SolidStorage): AsyncIterable<string> {
  return storage.sessionIds();
}

/** Deletes every session in a {@link solidStorage} (the SDK's `clearSessionFromStorageAll`); returns how many. */
export function clearSessionsFromStore(storage: SolidStorage): Promise<number> {
  return storage.clearSessions();
}
