import { TokenkeeperError } from '../errors.js';
import { checkNamespace, dropInKey } from '../store/kit/keys.js';
import type { KeptLease } from '../store/kit/lease.js';
import { keepAlive } from '../store/kit/lease.js';
import { isPlainObject, parseJson } from '../store/kit/records.js';
import type { Store, StoreRecord } from '../store/types.js';
import { withLock } from '../store/with-lock.js';

/** The auth object podio-js keeps and hands to its session store. */
export interface PodioAuthObject {
  accessToken?: string;
  refreshToken?: string;
  /** Seconds, relative to when the token was issued (podio-js stores it as the API sent it). */
  expiresIn?: number;
  ref?: unknown;
  transferToken?: string;
  scope?: string;
}

/** podio-js's authentication types. */
export type PodioAuthType = 'server' | 'client' | 'password' | (string & {});

export interface PodioSessionStoreOptions {
  /** Key prefix in the store (default `podio`; no `:`), so apps and tenants never meet. */
  namespace?: string;
  /**
   * Whose tokens these are, for example a user or app id: each key gets its own record per
   * auth type. The Podio PHP Redis example means to do this and never does.
   */
  key?: string;
  /**
   * Called when the store fails. podio-js must always get its callback (or it hangs), so a
   * failed read calls back with no session, and a failed write calls back with the error.
   */
  onError?: (error: unknown) => void;
  /**
   * How records are shaped in the store: `js` (default, podio-js's camelCase) or `php`, the
   * snake_case of podio-php's session managers (`access_token`, `refresh_token`, `expires_in`,
   * `ref`, `scope`), so PHP and Node services can share one Redis or PostgreSQL store.
   */
  format?: 'js' | 'php';
}

/** What podio-js expects as `options.sessionStore`, plus {@link PodioSessionStore.shareRefresh}. */
export interface PodioSessionStore {
  get(authType: PodioAuthType, callback: (auth?: PodioAuthObject) => void): void;
  set(auth: PodioAuthObject, authType: PodioAuthType, callback?: (error: unknown) => void): void;
  /**
   * Routes `podio`'s token refresh through this store: one refresh per expiry across every
   * process (and every concurrent request of this one) that shares the store, and no failed
   * request. Under the store's lock it re-reads the record: if another process already stored
   * newer tokens, the SDK adopts them and asks Podio nothing; otherwise it refreshes once and
   * stores the result before the lock is released. The record is never deleted before a refresh.
   * Returns `podio`. Not for `authType: 'client'` (Podio has no client-side refresh).
   */
  shareRefresh<T extends object>(podio: T, options?: ShareRefreshOptions): T;
}

export interface ShareRefreshOptions {
  /**
   * The lock's lease (default 5 s), as the session engine takes it: a heartbeat extends it while
   * the refresh runs, however long Podio takes, and it is confirmed just before the refresh
   * token is sent (nothing is sent once it was lost). A process that dies holding it frees the
   * lock within one lease.
   */
  leaseMs?: number;
  /** How long to wait for another process's refresh (default 60 s). */
  waitMs?: number;
}

/** The parts of a podio-js 1.x instance `shareRefresh` uses (its own methods, not a public API). */
export interface PodioLike {
  authType: string;
  authObject?: PodioAuthObject;
  _refreshToken(callback: (error: unknown, response?: unknown) => void): void;
  _authenticate(data: Record<string, string>, callback: (error: unknown, response?: unknown) => void): void;
  _onAccessTokenAcquired(response: unknown, callback: (error: unknown) => void): void;
}

const FIELDS = ['accessToken', 'refreshToken', 'expiresIn', 'ref', 'transferToken', 'scope'] as const;

/**
 * A podio-js session store backed by any tokenkeeper store: atomic writes, encryption, Redis or
 * PostgreSQL, several processes, by passing one object.
 *
 * podio-js writes `{}` through `set` on sign-out and just before it refreshes. That deletes the
 * record only if it still holds the tokens this store object last read or wrote (checked under
 * the store's lock): a process whose SDK holds an old token never deletes the session another
 * process just refreshed. Every field podio-js stores round-trips exactly, with the absolute
 * expiry kept beside the relative `expiresIn`.
 *
 * @example
 * const podio = new Podio({ authType: 'server', clientId, clientSecret },
 *   { sessionStore: podioSessionStore(fileStore(), { key: `user-${userId}` }) });
 */
export function podioSessionStore(store: Store, options: PodioSessionStoreOptions = {}): PodioSessionStore {
  const namespace = checkNamespace(options.namespace ?? 'podio', 'podioSessionStore()');
  if (options.key !== undefined && (typeof options.key !== 'string' || options.key.length === 0)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'podioSessionStore({ key }) must be a non-empty string.',
    );
  }
  const onError = options.onError ?? (() => {});
  const format = options.format ?? 'js';
  if (format !== 'js' && format !== 'php') {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', "podioSessionStore({ format }) must be 'js' or 'php'.");
  }
  const encode = format === 'php' ? toPodioPhpRecord : toRecord;
  const keyOf = (authType: PodioAuthType) => {
    if (typeof authType !== 'string' || authType.length === 0) {
      throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'podio-js passed no authType.');
    }
    return options.key === undefined
      ? dropInKey(namespace, 'a', authType)
      : dropInKey(namespace, 'u', options.key, authType);
  };
  // Before 0.2 a store without `key` used `namespace:authType`: still read (and moved on the next
  // write) where that cannot be another drop-in's key, that is when authType has no `:`.
  const legacyOf = (authType: PodioAuthType) =>
    options.key === undefined && !authType.includes(':') ? `${namespace}:${authType}` : undefined;
  const read = async (authType: PodioAuthType) => {
    const entry = await store.get(keyOf(authType));
    const legacy = legacyOf(authType);
    return entry === undefined && legacy !== undefined ? store.get(legacy) : entry;
  };
  // The access token this object last read or wrote, per authType: what a `set({})` may delete.
  const lastSeen = new Map<PodioAuthType, string | undefined>();

  /** Deletes the record if it still holds what this object last saw; keeps a newer one. */
  const clear = (authType: PodioAuthType) =>
    withLock(
      store,
      keyOf(authType),
      async () => {
        for (const key of [keyOf(authType), legacyOf(authType)]) {
          if (key === undefined) continue;
          const entry = await store.get(key).catch((error) => {
            if ((error as { code?: string }).code === 'TOKENKEEPER_CORRUPT_RECORD') return { version: 0, value: {} };
            throw error;
          });
          if (entry === undefined) continue;
          const current = toAuthObject(entry.value)?.accessToken;
          // Another process stored newer tokens since this one last looked: they stay.
          if (current !== undefined && current !== lastSeen.get(authType)) continue;
          await store.delete(key, entry.version === 0 ? { force: true } : { ifVersion: entry.version });
        }
        lastSeen.delete(authType);
      },
      { leaseMs: 10_000, waitMs: 15_000 },
    );

  return {
    get(authType, callback) {
      Promise.resolve()
        .then(() => read(authType))
        .then(
          (entry) => {
            const auth = entry === undefined ? undefined : toAuthObject(entry.value);
            lastSeen.set(authType, auth?.accessToken);
            if (entry !== undefined && auth === undefined) {
              onError(
                new TokenkeeperError(
                  'TOKENKEEPER_CORRUPT_RECORD',
                  'The stored Podio session is not one podioSessionStore wrote; treating it as signed out.',
                  { key: keyOf(authType) },
                ),
              );
            }
            callback(auth);
          },
          (error) => {
            onError(error);
            callback(undefined); // no session: the SDK authenticates again instead of hanging
          },
        );
    },
    set(auth, authType, callback) {
      Promise.resolve()
        .then(async () => {
          const key = keyOf(authType);
          const legacy = legacyOf(authType);
          if (auth === null || typeof auth !== 'object' || auth.accessToken === undefined) {
            await clear(authType); // sign-out, or the SDK clearing before a refresh
            return;
          }
          await store.set(key, encode(auth));
          lastSeen.set(authType, auth.accessToken);
          if (legacy !== undefined) await store.delete(legacy);
        })
        .then(
          () => callback?.(null), // podio-js checks `err !== null`: a bare callback() breaks its retries
          (error) => {
            onError(error);
            callback?.(error);
          },
        );
    },
    shareRefresh(instance, shareOptions = {}) {
      const podio = instance as unknown as PodioLike;
      if (typeof podio !== 'object' || podio === null || typeof podio._refreshToken !== 'function') {
        throw new TokenkeeperError(
          'TOKENKEEPER_INVALID_ARGUMENT',
          'shareRefresh(podio) needs a podio-js instance (tested with podio-js 1.6).',
        );
      }
      const lock = { leaseMs: shareOptions.leaseMs ?? 5_000, waitMs: shareOptions.waitMs ?? 60_000 };
      const original = podio._refreshToken;
      const flights = new Map<string, Promise<unknown>>();
      podio._refreshToken = function refreshShared(this: PodioLike, callback) {
        if (this.authType === 'client') return original.call(this, callback);
        const authType = this.authType;
        const seen = this.authObject?.accessToken;
        // Concurrent 401s in this instance share one flight; processes share the store's lock.
        let flight = flights.get(authType);
        if (flight === undefined) {
          flight = leased(authType, (lease) => refreshUnderLock(this, authType, seen, lease)).finally(() =>
            flights.delete(authType),
          );
          flights.set(authType, flight);
        }
        flight.then(
          (response) => callback(null, response), // podio-js checks err !== null
          (error) => {
            onError(error);
            callback(error);
          },
        );
      };

      /**
       * The store's lock with the session engine's lease discipline (the store kit's heartbeat):
       * extended every third of a lease while the work runs, released after it.
       */
      const leased = async <T>(authType: PodioAuthType, work: (lease: KeptLease) => Promise<T>): Promise<T> => {
        const lease = keepAlive(await store.lock(keyOf(authType), lock), Math.max(20, lock.leaseMs / 3));
        try {
          return await work(lease);
        } finally {
          await lease.release().catch(onError);
        }
      };

      const refreshUnderLock = async (
        sdk: PodioLike,
        authType: PodioAuthType,
        seen: string | undefined,
        lease: KeptLease,
      ) => {
        const entry = await read(authType);
        const stored = entry === undefined ? undefined : toAuthObject(entry.value);
        if (stored?.accessToken !== undefined && stored.accessToken !== seen) {
          sdk.authObject = stored; // another process refreshed: adopt its tokens
          lastSeen.set(authType, stored.accessToken);
          return { access_token: stored.accessToken };
        }
        const refreshToken = stored?.refreshToken ?? sdk.authObject?.refreshToken;
        if (refreshToken === undefined) {
          throw new TokenkeeperError(
            'TOKENKEEPER_REAUTH_REQUIRED',
            'The Podio session has no refresh token: authenticate again.',
          );
        }
        // Confirmed just before sending, as the engine does: a refresh token goes out only under a
        // lock this process provably still holds, so no other process can be sending the same one.
        if (lease.lost || !(await lease.extend())) {
          throw new TokenkeeperError(
            'TOKENKEEPER_LEASE_LOST',
            'The lock on the Podio session was lost before its refresh could be sent (this process stalled, or the store failed); nothing was sent. Retry the request.',
            { key: keyOf(authType) },
          );
        }
        const response = await new Promise((resolve, reject) =>
          sdk._authenticate({ grant_type: 'refresh_token', refresh_token: refreshToken }, (error, data) =>
            error ? reject(error) : resolve(data),
          ),
        );
        // The SDK keeps the new tokens and writes them through this store, before the lock is released.
        await new Promise<void>((resolve, reject) =>
          sdk._onAccessTokenAcquired(response, (error) => (error ? reject(error) : resolve())),
        );
        return response;
      };
      return instance;
    },
  };
}

function toRecord(auth: PodioAuthObject): StoreRecord {
  const rec: StoreRecord = { format: 'podio-js/1' };
  for (const f of FIELDS) if (auth[f] !== undefined) rec[f] = auth[f] as StoreRecord[string];
  if (typeof auth.expiresIn === 'number') rec.expiresAt = Date.now() + auth.expiresIn * 1000;
  return rec;
}

function toAuthObject(rec: StoreRecord): PodioAuthObject | undefined {
  if (rec.format === 'podio-php/1') return fromPodioPhpRecord(rec);
  if (rec.format !== 'podio-js/1' || typeof rec.accessToken !== 'string') return undefined;
  const auth: Record<string, unknown> = {};
  for (const f of FIELDS) if (rec[f] !== undefined) auth[f] = rec[f];
  return auth as PodioAuthObject;
}

/**
 * The record podio-php's session managers keep (snake_case, as in Podio's PHP docs), plus
 * `format` and the absolute `expires_at` (seconds since the epoch). A PHP service reads it from
 * the shared store's value (for the Redis store: the `d` field of the JSON at
 * `<prefix>{<key>}:r`; for PostgreSQL: the `value` column).
 */
export function toPodioPhpRecord(auth: PodioAuthObject): StoreRecord {
  const rec: StoreRecord = { format: 'podio-php/1' };
  const set = (k: string, v: unknown) => {
    if (v !== undefined) rec[k] = v as StoreRecord[string];
  };
  set('access_token', auth.accessToken);
  set('refresh_token', auth.refreshToken);
  set('expires_in', auth.expiresIn);
  set('ref', auth.ref);
  set('transfer_token', auth.transferToken);
  set('scope', auth.scope);
  if (typeof auth.expiresIn === 'number') rec.expires_at = Math.floor(Date.now() / 1000) + auth.expiresIn;
  return rec;
}

/** Reads a podio-php shaped record (see {@link toPodioPhpRecord}) as podio-js's auth object. */
export function fromPodioPhpRecord(rec: StoreRecord): PodioAuthObject | undefined {
  if (typeof rec.access_token !== 'string') return undefined;
  const auth: Record<string, unknown> = {};
  const map: [string, keyof PodioAuthObject][] = [
    ['access_token', 'accessToken'],
    ['refresh_token', 'refreshToken'],
    ['expires_in', 'expiresIn'],
    ['ref', 'ref'],
    ['transfer_token', 'transferToken'],
    ['scope', 'scope'],
  ];
  for (const [from, to] of map) if (rec[from] !== undefined) auth[to] = rec[from];
  return auth as PodioAuthObject;
}

/**
 * Moves a session saved by podio-js's example file store (`tmp/<authType>.json`, the auth
 * object as JSON) into a session store. Returns false if the file is missing or empty; the
 * file is left in place.
 * @throws TokenkeeperError `TOKENKEEPER_CORRUPT_RECORD` if it is not a podio-js auth object.
 */
export async function importPodioSessionFile(
  target: PodioSessionStore,
  authType: PodioAuthType,
  text: string | undefined,
): Promise<boolean> {
  if (text === undefined || text.trim() === '') return false;
  const auth = parseJson(text);
  if (!isPlainObject(auth) || typeof auth.accessToken !== 'string') {
    throw new TokenkeeperError(
      'TOKENKEEPER_CORRUPT_RECORD',
      'This is not a podio-js session file (it should hold the auth object, with accessToken). Nothing was imported.',
    );
  }
  await new Promise<void>((resolve, reject) =>
    target.set(auth as PodioAuthObject, authType, (e) => (e ? reject(e) : resolve())),
  );
  return true;
}
