import { type EncryptionOptions, encryptedStore } from '../codec/encrypted.js';
import { isTokenkeeperError, TokenkeeperError } from '../errors.js';
import { assertValidKey, checkNamespace, describeType, MAX_KEY_LENGTH } from '../store/keys.js';
import { memoryStore } from '../store/memory.js';
import type { LockOptions, Store, StoreEntry } from '../store/types.js';
import { withLock } from '../store/with-lock.js';
import { TokenSet } from '../token/token-set.js';
import { Emitter, type SessionEventName, type SessionEvents } from './events.js';
import { checkGrant, type LoginGrant, renewByOf } from './grants.js';
import {
  type ClientOptions,
  type EndpointOptions,
  OAuthClient,
  type RetryOptions,
  TokenEndpointError,
} from './oauth.js';
import { decodeSession, encodeSession, type SessionRecord } from './record.js';
import { type LogoutOptions, type LogoutResult, reauthRequired, Session, type SessionHost } from './session.js';

export interface SessionManagerOptions extends EndpointOptions {
  /** Where sessions live. Default: a new {@link memoryStore} (closed by {@link SessionManager.close}). */
  store?: Store;
  client: ClientOptions;
  /** Prefix of every key, so applications can share one store (default `tokenkeeper`; no `:`). */
  namespace?: string;
  /** Renew this long before expiry (default 60 s). */
  refreshSkewMs?: number;
  /** Encrypt every session record at rest (see `encryptedStore`). */
  encryption?: EncryptionOptions;
  /** Retries of token requests on network errors and 5xx. */
  retry?: RetryOptions;
  /**
   * The lease and wait of the store lock taken to renew a session. The lease must outlast one
   * renewal with its retries (default lease 45 s, wait 60 s).
   */
  lock?: Pick<LockOptions, 'leaseMs' | 'waitMs'>;
}

export interface LoginOptions {
  /** The id to store the session under. Default: the grant's name, as Podio's `authType`. */
  sessionId?: string;
  /**
   * Return the stored session while it is usable instead of asking for new tokens. The check
   * happens under the store's lock, so N processes starting at once make one token request.
   */
  reuse?: boolean;
}

/**
 * Keeps many OAuth sessions in a store and hands out valid access tokens.
 *
 * @example
 * const manager = new SessionManager({ store: fileStore(), issuer: 'https://auth.example.com',
 *   client: { clientId, clientSecret } });
 * const session = await manager.login({ grant: 'client_credentials' }, { sessionId: 'svc', reuse: true });
 * const response = await session.fetch('https://api.example.com/things');
 */
export class SessionManager {
  readonly store: Store;
  readonly namespace: string;
  readonly refreshSkewMs: number;
  readonly #ownsStore: boolean;
  readonly #oauth: OAuthClient;
  readonly #events = new Emitter();
  readonly #lock: Pick<LockOptions, 'leaseMs' | 'waitMs'>;
  readonly #fetch: typeof fetch;
  readonly #inflight = new Map<string, Promise<TokenSet>>();
  readonly #sessions = new Map<string, Session>();
  readonly #host: SessionHost;
  #unwatch: (() => void) | undefined;
  readonly #syncing = new Set<string>();

  constructor(options: SessionManagerOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        'new SessionManager(options) needs an options object.',
      );
    }
    this.#oauth = new OAuthClient(options, options.client, options.retry);
    const namespace = checkNamespace(options.namespace ?? 'tokenkeeper', 'new SessionManager()');
    const skew = options.refreshSkewMs ?? 60_000;
    if (typeof skew !== 'number' || !Number.isFinite(skew) || skew < 0) {
      throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'refreshSkewMs must be a non-negative number.');
    }
    if (options.store !== undefined && !looksLikeStore(options.store)) {
      throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'store must implement the Store interface.');
    }
    this.namespace = namespace;
    this.refreshSkewMs = skew;
    this.#ownsStore = options.store === undefined;
    const base = options.store ?? memoryStore();
    this.store = options.encryption ? encryptedStore(base, options.encryption) : base;
    this.#lock = { leaseMs: options.lock?.leaseMs ?? 45_000, waitMs: options.lock?.waitMs ?? 60_000 };
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#host = {
      refreshSkewMs: skew,
      fetch: this.#fetch,
      renew: (session, stale, force) => this.#renew(session, stale, force),
      logout: (session, o) => this.#logout(session, o),
    };
  }

  /** Listens to `login`, `refresh`, `logout`, `reauth-required` or `error`; returns an unsubscribe function. */
  on<E extends SessionEventName>(event: E, handler: (payload: SessionEvents[E]) => void): () => void {
    return this.#events.on(event, handler);
  }

  off<E extends SessionEventName>(event: E, handler: (payload: SessionEvents[E]) => void): void {
    this.#events.off(event, handler);
  }

  /**
   * Logs in with a grant and stores the session.
   * @throws TokenkeeperError `TOKENKEEPER_INVALID_ARGUMENT` for an unknown grant or missing
   *   parameters, `TOKENKEEPER_INVALID_GRANT` when the server refuses the credentials.
   */
  async login(grant: LoginGrant, options: LoginOptions = {}): Promise<Session> {
    checkGrant(grant);
    const sessionId = options.sessionId ?? grant.grant;
    const key = this.#key(sessionId);
    return this.#withLock(key, async () => {
      if (options.reuse) {
        const entry = await this.store.get(key);
        if (entry !== undefined) {
          const rec = decodeSession(key, entry.value);
          const usable =
            rec.status === 'active' && (!rec.tokens.isExpired(this.refreshSkewMs) || rec.renewBy !== 'none');
          if (usable) return this.#session(sessionId, rec);
        }
      }
      const tokens = await this.#obtain(grant);
      const now = Date.now();
      const rec: SessionRecord = {
        tokens,
        grant: grant.grant,
        renewBy: renewByOf(grant.grant, tokens),
        status: 'active',
        createdAt: now,
        updatedAt: now,
      };
      if ('scope' in grant && grant.scope !== undefined) rec.scope = grant.scope;
      await this.store.set(key, encodeSession(rec));
      this.#events.emit('login', { sessionId, grant: grant.grant });
      return this.#session(sessionId, rec);
    });
  }

  /** Stores tokens obtained elsewhere (a token endpoint response) as a session. */
  async adopt(sessionId: string, response: unknown): Promise<Session> {
    const key = this.#key(sessionId);
    const tokens = TokenSet.fromResponse(response);
    return this.#withLock(key, async () => {
      const now = Date.now();
      const rec: SessionRecord = {
        tokens,
        grant: 'adopt',
        renewBy: renewByOf('adopt', tokens),
        status: 'active',
        createdAt: now,
        updatedAt: now,
      };
      await this.store.set(key, encodeSession(rec));
      this.#events.emit('login', { sessionId, grant: 'adopt' });
      return this.#session(sessionId, rec);
    });
  }

  /** The stored session, or `undefined` if there is none. Reads the store every time. */
  async get(sessionId: string): Promise<Session | undefined> {
    const key = this.#key(sessionId);
    const entry = await this.store.get(key);
    if (entry === undefined) {
      this.#sessions.delete(sessionId);
      return undefined;
    }
    return this.#session(sessionId, decodeSession(key, entry.value));
  }

  /** Every session id in this namespace, streamed from the store in constant memory. */
  async *sessionIds(): AsyncIterable<string> {
    const prefix = this.#prefix();
    for await (const key of this.store.keys(prefix)) yield key.slice(prefix.length);
  }

  /**
   * Deletes every session in this namespace (revoking each first with `{ revoke: true }`).
   * Returns how many were removed.
   */
  async clear(options: LogoutOptions = {}): Promise<number> {
    let removed = 0;
    for (;;) {
      const batch: string[] = [];
      for await (const id of this.sessionIds()) {
        batch.push(id);
        if (batch.length === 500) break;
      }
      if (batch.length === 0) return removed;
      let progress = 0;
      for (const id of batch) {
        if (options.revoke) {
          const session = await this.get(id).catch(() => undefined);
          if (session) {
            await session.logout({ revoke: true });
            progress++;
            continue;
          }
        }
        if (await this.store.delete(this.#key(id))) progress++;
        this.#sessions.delete(id);
      }
      removed += progress;
      if (progress === 0) return removed; // nothing could be removed: stop rather than loop
    }
  }

  /** Closes the store if the manager created it (the default memory store); a store you passed stays open. */
  async close(): Promise<void> {
    this.#unwatch?.();
    this.#unwatch = undefined;
    if (this.#ownsStore) await this.store.close();
  }

  #prefix(): string {
    return `${this.namespace}:s:`;
  }

  #key(sessionId: string): string {
    if (typeof sessionId !== 'string' || sessionId.length === 0) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_KEY',
        `A session id must be a non-empty string, got ${describeType(sessionId)}.`,
      );
    }
    const key = this.#prefix() + sessionId;
    if (key.length > MAX_KEY_LENGTH) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_KEY',
        `A session id is at most ${MAX_KEY_LENGTH - this.#prefix().length} characters long here.`,
      );
    }
    assertValidKey(key, 'session id');
    return key;
  }

  #session(sessionId: string, rec: SessionRecord): Session {
    let session = this.#sessions.get(sessionId);
    if (session === undefined) {
      session = new Session(this.#host, sessionId, rec);
      this.#sessions.set(sessionId, session);
      if (this.#unwatch === undefined && this.store.watch) {
        this.#unwatch = this.store.watch((key) => this.#changed(key));
      }
    } else {
      session._apply(rec);
    }
    return session;
  }

  /**
   * Another tab (or process, for stores that can tell) wrote or deleted `key`: bring the sessions
   * handed out here up to date with one read, so their next `getAccessToken()` is served from
   * memory with the renewed token, or fails at once if the session was logged out.
   */
  #changed(key: string | undefined): void {
    const prefix = this.#prefix();
    const ids =
      key === undefined ? [...this.#sessions.keys()] : key.startsWith(prefix) ? [key.slice(prefix.length)] : [];
    for (const id of ids) {
      const k = prefix + id;
      if (!this.#sessions.has(id) || this.#syncing.has(k) || this.#inflight.has(k)) continue;
      this.#syncing.add(k);
      this.store
        .get(k)
        .then((entry) => {
          const session = this.#sessions.get(id);
          if (session === undefined || this.#inflight.has(k)) return;
          if (entry === undefined) {
            session._remove();
            this.#sessions.delete(id);
            this.#events.emit('logout', { sessionId: id, revoked: false });
            return;
          }
          const rec = decodeSession(k, entry.value);
          if (rec.updatedAt < session._updatedAt) return; // an older write arrived late
          const wasActive = session.status === 'active';
          session._apply(rec);
          if (wasActive && rec.status === 'reauth-required') {
            this.#events.emit('reauth-required', { sessionId: id, error: reauthRequired(id, rec.reason) });
          }
        })
        .catch((error: unknown) => this.#events.emit('error', { sessionId: id, error }))
        .finally(() => this.#syncing.delete(k));
    }
  }

  #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return withLock(this.store, key, fn, this.#lock);
  }

  #obtain(grant: LoginGrant): Promise<TokenSet> {
    switch (grant.grant) {
      case 'client_credentials':
        return this.#oauth.clientCredentials(grant.scope);
      case 'password':
        return this.#oauth.password(grant.username, grant.password, grant.scope);
      case 'authorization_code':
        return this.#oauth.authorizationCode(grant.code, grant.redirectUri, grant.codeVerifier);
      case 'refresh_token':
        return this.#oauth.refresh(grant.refreshToken, grant.scope);
    }
  }

  /** One renewal per session at a time in this process; the store lock covers the others. */
  #renew(session: Session, stale: TokenSet | undefined, force: boolean): Promise<TokenSet> {
    const key = this.#key(session.id);
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#withLock(key, () => this.#renewLocked(session, key, stale, force)).finally(() => {
        this.#inflight.delete(key);
      });
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  async #renewLocked(session: Session, key: string, stale: TokenSet | undefined, force: boolean): Promise<TokenSet> {
    const sessionId = session.id;
    const entry = await this.store.get(key);
    if (entry === undefined) {
      this.#sessions.delete(sessionId);
      throw new TokenkeeperError(
        'TOKENKEEPER_NO_SESSION',
        `There is no stored session ${JSON.stringify(sessionId)} (it was logged out or cleared). Log in again.`,
        { key: sessionId },
      );
    }
    const rec = decodeSession(key, entry.value);
    session._apply(rec);
    if (rec.status === 'reauth-required') throw reauthRequired(sessionId, rec.reason);
    // Another process (or an earlier flight) may have renewed already: adopt its token.
    const renewedElsewhere = stale === undefined || rec.tokens.accessToken !== stale.accessToken;
    if (!rec.tokens.isExpired(this.refreshSkewMs) && (renewedElsewhere || !force)) return rec.tokens;

    let tokens: TokenSet;
    try {
      tokens = await this.#renewal(sessionId, rec);
    } catch (error) {
      if (
        isTokenkeeperError(error, 'TOKENKEEPER_INVALID_GRANT') ||
        isTokenkeeperError(error, 'TOKENKEEPER_REAUTH_REQUIRED')
      ) {
        throw await this.#markReauth(session, key, entry, rec, error);
      }
      throw error; // network, 5xx: the stored session is untouched
    }
    if (tokens.refreshToken === undefined && rec.renewBy === 'refresh_token') {
      tokens = tokens.with({ refreshToken: rec.tokens.refreshToken }); // the server did not rotate it
    }
    const next: SessionRecord = { ...rec, tokens, updatedAt: Date.now() };
    try {
      // Compare-and-set: if our lease ran out during a slow renewal and someone else wrote, do
      // not overwrite their (newer) tokens.
      await this.store.set(key, encodeSession(next), { ifVersion: entry.version });
    } catch (error) {
      if (!isTokenkeeperError(error, 'TOKENKEEPER_VERSION_CONFLICT')) throw error;
      this.#events.emit('error', { sessionId, error });
      const current = await this.store.get(key);
      if (current === undefined) throw error;
      const theirs = decodeSession(key, current.value);
      session._apply(theirs);
      return theirs.tokens;
    }
    session._apply(next);
    this.#events.emit('refresh', { sessionId, grant: rec.grant, expiresAt: tokens.expiresAt });
    return tokens;
  }

  #renewal(sessionId: string, rec: SessionRecord): Promise<TokenSet> {
    if (rec.renewBy === 'refresh_token' && rec.tokens.refreshToken) {
      return this.#oauth.refresh(rec.tokens.refreshToken);
    }
    if (rec.renewBy === 'client_credentials') return this.#oauth.clientCredentials(rec.scope);
    return Promise.reject(reauthRequired(sessionId, 'no refresh token: the access token expired'));
  }

  async #markReauth(
    session: Session,
    key: string,
    entry: StoreEntry,
    rec: SessionRecord,
    cause: TokenkeeperError,
  ): Promise<TokenkeeperError> {
    const reason = cause instanceof TokenEndpointError ? cause.oauthError : undefined;
    const marked: SessionRecord = {
      ...rec,
      status: 'reauth-required',
      reason: reason ?? 'expired',
      updatedAt: Date.now(),
    };
    try {
      await this.store.set(key, encodeSession(marked), { ifVersion: entry.version });
      session._apply(marked);
    } catch (error) {
      this.#events.emit('error', { sessionId: session.id, error });
    }
    const error = cause.code === 'TOKENKEEPER_REAUTH_REQUIRED' ? cause : reauthRequired(session.id, reason, cause);
    this.#events.emit('reauth-required', { sessionId: session.id, error });
    return error;
  }

  async #logout(session: Session, options: LogoutOptions): Promise<LogoutResult> {
    const key = this.#key(session.id);
    return this.#withLock(key, async () => {
      const entry = await this.store.get(key).catch(() => undefined);
      let revoked = false;
      if (options.revoke !== false) {
        let tokens = session.tokens;
        try {
          if (entry) tokens = decodeSession(key, entry.value).tokens;
        } catch {}
        try {
          // Revoking the refresh token revokes its access tokens too (RFC 7009 §2.1).
          revoked = tokens.refreshToken
            ? await this.#oauth.revoke(tokens.refreshToken, 'refresh_token')
            : await this.#oauth.revoke(tokens.accessToken, 'access_token');
        } catch (error) {
          this.#events.emit('error', { sessionId: session.id, error });
        }
      }
      await this.store.delete(key);
      this.#sessions.delete(session.id);
      this.#events.emit('logout', { sessionId: session.id, revoked });
      return { revoked };
    });
  }
}

function looksLikeStore(store: unknown): store is Store {
  const s = store as Record<string, unknown>;
  return (
    typeof s === 'object' &&
    s !== null &&
    ['get', 'set', 'delete', 'keys', 'lock', 'close'].every((m) => typeof s[m] === 'function')
  );
}
