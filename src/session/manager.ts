import { checkEncryptionOptions, type EncryptionOptions } from '../codec/encryption-options.js';
import { isTokenkeeperError, TokenkeeperError } from '../errors.js';
import { assertValidKey, checkNamespace, describeType, MAX_KEY_LENGTH } from '../store/kit/keys.js';
import type { LockOptions, Store, StoreEntry } from '../store/types.js';
import { withLock } from '../store/with-lock.js';
import { TokenSet } from '../token/token-set.js';
import { SessionCache } from './cache.js';
import { deferredStore } from './deferred-store.js';
import type { DpopKeys } from './dpop.js';
import {
  type CheckedDpop,
  checkDpop,
  type DpopAlgorithm,
  type DpopOptions,
  type DpopRecord,
  type DpopSigner,
} from './dpop-options.js';
import { aboutSession, RenewalEngine } from './engine/renewal.js';
import { Emitter, type SessionEventName, type SessionEvents } from './events.js';
import { checkGrant, exchangeParameters, type LoginGrant, renewByOf } from './grants.js';
import { type Instrumentation, instrumentedStore } from './instrumentation.js';
// Types only: the code flow (and the oauth4webapi code it needs) loads with authorize()/callback().
import type {
  AuthorizeOptions,
  AuthorizeResult,
  CallbackInput,
  CallbackOptions,
  LoginContext,
} from './login/authorize.js';
import { type ClientOptions, type EndpointOptions, OAuthClient, type Obtained, type RetryOptions } from './oauth.js';
import {
  type Binding,
  bound,
  checkBinding,
  decodeSession,
  encodeSession,
  hasEnded,
  type SessionRecord,
  ttlOf,
} from './record.js';
import { type LogoutOptions, type LogoutResult, reauthRequired, Session, type SessionHost } from './session.js';

export interface SessionManagerOptions extends EndpointOptions {
  /** Where sessions live. Default: a new {@link memoryStore} (closed by {@link SessionManager.close}). */
  store?: Store;
  /**
   * The client registered at the server. Omit it (with `issuer` and `tokenEndpoint`) for a
   * manager that only hosts sessions whose server and client are learnt at run time, as
   * `tokenkeeper/mcp` does: such a manager lists, reads and clears sessions, and its own logins
   * fail with `TOKENKEEPER_INVALID_ARGUMENT`.
   */
  client?: ClientOptions;
  /** Prefix of every key, so applications can share one store (default `tokenkeeper`; no `:`). */
  namespace?: string;
  /** Renew this long before expiry (default 60 s). */
  refreshSkewMs?: number;
  /** Encrypt every session record at rest (see `encryptedStore`). */
  encryption?: EncryptionOptions;
  /** Retries of token requests on network errors and 5xx. */
  retry?: RetryOptions;
  /**
   * The lease and wait of the store lock taken to renew a session (default lease 5 s, wait 60 s).
   * The holder renews its lease every third of it (a heartbeat) for as long as the renewal runs,
   * so a slow server never lets a second holder in, and a holder that dies frees the lock within
   * one lease (at once on one host with the file and SQLite stores). Before each refresh request
   * the lease is extended, and nothing is sent unless the store confirms it.
   */
  lock?: Pick<LockOptions, 'leaseMs' | 'waitMs'>;
  /**
   * The server's refresh-token reuse grace window, in ms (default 0: none). Within it, a refresh
   * whose answer was lost (a timeout, a connection reset after sending) is sent again at once
   * with the same refresh token, so the session survives. See docs/guide/sessions.md for which servers
   * offer one.
   */
  rotationGraceMs?: number;
  /**
   * How long a process that finds another process's refresh undecided (a renewal mark in the
   * record) waits for that process to store its result before taking the renewal over
   * (default 3 s; a live holder retries its write at least once a second).
   */
  undecidedWaitMs?: number;
  /**
   * How many renewals this manager sends to the token endpoint at once (default 32). A burst of
   * expired sessions (many users back after a deploy or an outage) queues behind the bound
   * instead of failing: each renewal waits its turn holding its session's lock, and every caller
   * gets a token, or an error only when its own deadline (`lock.waitMs`) ends.
   */
  maxConcurrentRenewals?: number;
  /**
   * An absolute lifetime for every session logged in (per login: `LoginOptions.sessionTtlMs`).
   * The store forgets the session when it ends (its TTL), on every store, and
   * `getAccessToken()` then fails with `TOKENKEEPER_NO_SESSION`. Default: none.
   */
  sessionTtlMs?: number;
  /**
   * An idle lifetime: the session ends this long after it was last used. Use extends it,
   * throttled (at most one store write per quarter of it, and per minute), so the hot path gains
   * no store write per call. Default: none.
   */
  idleTtlMs?: number;
  /**
   * How many of the sessions handed out stay in memory when nobody holds them (default 1,000,
   * the most recently used). Others are kept only while a caller holds the `Session` object, so
   * a process that touches many sessions keeps bounded memory.
   */
  sessionCacheSize?: number;
  /**
   * How long a login started by {@link SessionManager.authorize} waits for its callback
   * (default 10 minutes). The pending login is kept in the store, so the callback can arrive at
   * any process or machine that shares it.
   */
  pendingLoginTtlMs?: number;
  /**
   * DPoP-bound sessions (RFC 9449): `true` (ES256), an algorithm (`ES256`, `EdDSA`, `RS256`) or
   * {@link DpopOptions}. Each session gets its own key at login, kept with it: in the record,
   * which must then be encrypted (`encryption`), or in a browser as a non-extractable key in
   * IndexedDB. Every token request and `session.fetch` of the session carries a proof.
   */
  dpop?: boolean | DpopAlgorithm | DpopOptions;
  /**
   * Spans around token requests and store calls (lock waits included), and metrics from the
   * manager's events: see `tokenkeeper/otel`. Never a token, a secret or a session id in them.
   */
  instrumentation?: Instrumentation;
}

export interface LoginOptions {
  /** The id to store the session under. Default: the grant's name, as Podio's `authType`. */
  sessionId?: string;
  /**
   * Return the stored session while it is usable instead of asking for new tokens. The check
   * happens under the store's lock, so N processes starting at once make one token request.
   */
  reuse?: boolean;
  /**
   * Overwrite a stored session of another server or client (or one this manager cannot
   * decrypt) under this id. Without it, `login` refuses with `TOKENKEEPER_SESSION_MISMATCH` (or
   * `TOKENKEEPER_DECRYPT_FAILED`) and the other app's tokens stay as they are.
   */
  replace?: boolean;
  /** This session's absolute lifetime (default: the manager's `sessionTtlMs`). */
  sessionTtlMs?: number;
  /** This session's idle lifetime (default: the manager's `idleTtlMs`). */
  idleTtlMs?: number;
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
/** Set only while {@link SessionManager._forServer} builds a manager, which then shares its parent's events. */
let parentEvents: Emitter | undefined;

export class SessionManager {
  readonly store: Store;
  readonly namespace: string;
  readonly refreshSkewMs: number;
  readonly #ownsStore: boolean;
  readonly #oauth: OAuthClient;
  readonly #events = parentEvents ?? new Emitter();
  /** The options as given, and the store before encryption: what {@link _forServer} passes on. */
  readonly #options: SessionManagerOptions;
  readonly #base: Store;
  readonly #lock: Pick<LockOptions, 'leaseMs' | 'waitMs'>;
  readonly #fetch: typeof fetch;
  readonly #engine: RenewalEngine;
  readonly #sessions: SessionCache;
  readonly #host: SessionHost;
  readonly #binding: Binding;
  readonly #lifetimes: { sessionTtlMs?: number; idleTtlMs?: number };
  #unwatch: (() => void) | undefined;
  readonly #syncing = new Set<string>();
  readonly #login: LoginContext;
  /** The checked `dpop` option; the keys themselves load on first use (see {@link #dpopKeys}). */
  readonly #dpopOption: CheckedDpop | undefined;
  #dpopLoaded: Promise<DpopKeys> | undefined;

  constructor(options: SessionManagerOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        'new SessionManager(options) needs an options object.',
      );
    }
    this.#options = options;
    this.#oauth =
      options.client === undefined && options.issuer === undefined && options.tokenEndpoint === undefined
        ? serverless()
        : new OAuthClient(options, options.client as ClientOptions, options.retry, options.instrumentation);
    this.#binding = {
      issuer: (options.issuer ?? options.tokenEndpoint) as string,
      clientId: options.client?.clientId as string,
    };
    this.#lifetimes = lifetimes(options, 'new SessionManager()');
    const cacheSize = options.sessionCacheSize ?? 1_000;
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) {
      throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'sessionCacheSize must be a non-negative integer.');
    }
    this.#sessions = new SessionCache(cacheSize);
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
    // The default memory store and the encryption are loaded on first use (see deferredStore).
    const base =
      options.store ??
      deferredStore(
        'memory',
        { crossProcessLock: false },
        () => import('../store/memory.js').then((m) => m.memoryStore()),
        false,
      );
    this.#base = base;
    // A record is encrypted for this server and client: moved to another app, it does not decrypt.
    const encryption = options.encryption;
    if (encryption !== undefined) checkEncryptionOptions(encryption); // bad keys fail here, not on first use
    const stored = encryption
      ? deferredStore(
          `encrypted(${base.name})`,
          base.capabilities,
          () =>
            import('../codec/encrypted.js').then((m) =>
              m.encryptedStore(base, {
                ...encryption,
                context: encryption.context ?? `${this.#binding.issuer} ${this.#binding.clientId}`,
              }),
            ),
          base.watch !== undefined,
        )
      : base;
    this.store = options.instrumentation ? instrumentedStore(stored, options.instrumentation) : stored;
    this.#dpopOption =
      options.dpop === undefined || options.dpop === false
        ? undefined
        : checkDpop(options.dpop, encryption !== undefined);
    this.#lock = { leaseMs: options.lock?.leaseMs ?? 5_000, waitMs: options.lock?.waitMs ?? 60_000 };
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#engine = new RenewalEngine(
      {
        store: this.store,
        oauth: this.#oauth,
        events: this.#events,
        lock: this.#lock as { leaseMs: number; waitMs: number },
        refreshSkewMs: skew,
        requestTimeoutMs: options.retry?.timeoutMs ?? 10_000,
        rotationGraceMs: nonNegative('rotationGraceMs', options.rotationGraceMs ?? 0),
        undecidedWaitMs: nonNegative('undecidedWaitMs', options.undecidedWaitMs ?? 3_000),
        binding: this.#binding,
        dpop: (key, sessionId, rec) => this.#signerOf(key, sessionId, rec),
        maxConcurrentRenewals: positiveMs(
          'maxConcurrentRenewals',
          options.maxConcurrentRenewals ?? DEFAULT_MAX_RENEWALS,
          true,
        ),
      },
      {
        apply: (id, rec) => this.#sessions.get(id)?._apply(rec),
        forget: (id) => this.#sessions.delete(id),
      },
    );
    this.#login = {
      store: this.store,
      oauth: this.#oauth,
      pendingKey: (state) => `${namespace}:login:${state}`,
      checkSessionId: (id) => this.#key(id),
      pendingTtlMs: positiveMs('pendingLoginTtlMs', options.pendingLoginTtlMs ?? 600_000),
    };
    this.#host = {
      refreshSkewMs: skew,
      fetch: this.#fetch,
      renew: (session, stale, force) => {
        this.#warnSingleProcessLock();
        return this.#engine.renew(session.id, this.#key(session.id), stale, force);
      },
      keyOf: (session) => this.#key(session.id),
      report: (session, error) => this.#events.emit('error', { sessionId: session.id, error }),
      touch: (session) => {
        this.#engine.touch(session.id, this.#key(session.id)).catch((error: unknown) => {
          this.#events.emit('error', { sessionId: session.id, error });
        });
      },
      logout: (session, o) => this.#logout(session, o),
      dpop: (session, rec) => this.#signerOf(this.#key(session.id), session.id, rec),
      oidc: async () => {
        const as = await this.#oauth.server();
        return {
          userinfoEndpoint: as.userinfo_endpoint,
          endSessionEndpoint: as.end_session_endpoint,
          clientId: this.#oauth.client.client_id,
        };
      },
    };
    options.instrumentation?.observe?.(this as never);
  }

  /**
   * @internal For integrations whose server and client are learnt at run time (`tokenkeeper/mcp`):
   * a manager for `server` that shares this one's store, namespace, encryption key, lock,
   * lifetimes and events. Its records are encrypted for its own server and client (or for
   * `context`, when given and the encryption options name none). Not for applications: give
   * each server its own manager.
   */
  _forServer(server: EndpointOptions & { client?: ClientOptions }, context?: string): SessionManager {
    const { encryption, instrumentation } = this.#options;
    parentEvents = this.#events;
    try {
      return new SessionManager({
        ...this.#options,
        // Nothing of this manager's own server is carried over to another one.
        issuer: undefined,
        tokenEndpoint: undefined,
        revocationEndpoint: undefined,
        authorizationEndpoint: undefined,
        deviceAuthorizationEndpoint: undefined,
        pushedAuthorizationRequestEndpoint: undefined,
        client: undefined,
        ...server,
        store: this.#base,
        ...(encryption && context !== undefined && encryption.context === undefined
          ? { encryption: { ...encryption, context } }
          : {}),
        // Spans for its store calls and token requests; its events are already this manager's.
        ...(instrumentation ? { instrumentation: { span: instrumentation.span.bind(instrumentation) } } : {}),
      });
    } finally {
      parentEvents = undefined;
    }
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
    const life = { ...this.#lifetimes, ...lifetimes(options, 'login()') };
    const scope = 'scope' in grant ? grant.scope : undefined;
    if (grant.grant === 'device_code') {
      // The user takes minutes to approve: poll without holding the lock, then store under it.
      // Checked first, so a session of another app is refused before the user is asked anything.
      const existing = await this.#existing(sessionId, key, options.replace === true);
      if (options.reuse && existing !== undefined && this.#usable(existing)) return this.#session(sessionId, existing);
      const { deviceLogin } = await import('./login/device.js');
      const bound = await (await this.#dpopKeys())?.create();
      const { tokens, claims } = await deviceLogin(this.#oauth, grant, bound?.signer);
      return this.#save(sessionId, key, grant.grant, tokens, options.replace === true, life, {
        scope,
        claims,
        dpop: bound?.record,
      });
    }
    return this.#withLock(key, async () => {
      const existing = await this.#existing(sessionId, key, options.replace === true);
      if (options.reuse && existing !== undefined && this.#usable(existing)) return this.#session(sessionId, existing);
      const bound = await (await this.#dpopKeys())?.create(); // a key of its own for every new session
      const { tokens, claims } = await this.#obtain(grant, bound?.signer);
      return this.#create(sessionId, key, grant.grant, tokens, life, { scope, claims, dpop: bound?.record });
    });
  }

  /**
   * Starts an authorization code login with PKCE: returns the URL to send the user to, and keeps
   * the pending login (PKCE verifier, nonce, redirect URI) in the store for
   * `pendingLoginTtlMs`. Complete it with {@link callback}, on this process or any other.
   *
   * @example
   * const { url } = await manager.authorize({ redirectUri: 'https://app.example.com/callback', scope: 'openid offline_access' });
   * // redirect the user to url; then, at the redirect URI:
   * const session = await manager.callback(request.url);
   */
  async authorize(options: AuthorizeOptions): Promise<AuthorizeResult> {
    // With DPoP, the new session's key is made now: the code is bound to it (dpop_jkt).
    const { startAuthorization } = await import('./login/authorize.js');
    return startAuthorization(this.#login, options, async () => (await (await this.#dpopKeys())?.create())?.record);
  }

  /**
   * Completes a login started by {@link authorize}: consumes its pending login once (a replayed
   * or forged callback fails with `TOKENKEEPER_LOGIN_STATE`), turns an error answer into a typed
   * error (`TOKENKEEPER_ACCESS_DENIED`, ...), checks `iss`, redeems the code, validates the ID
   * token, and stores the session under the id given to `authorize()`, else the ID token's `sub`.
   */
  async callback(input: CallbackInput, options: CallbackOptions = {}): Promise<Session> {
    if (options.sessionId !== undefined) this.#key(options.sessionId);
    const life = { ...this.#lifetimes, ...lifetimes(options, 'callback()') };
    let made: { key: string; record: DpopRecord } | undefined;
    const { completeAuthorization } = await import('./login/authorize.js');
    const done = await completeAuthorization(this.#login, input, options.sessionId, async (rec, login) => {
      const keys = await this.#dpopKeys();
      if (keys === undefined) return undefined;
      // A login started before DPoP was turned on (or by an older version) gets a key now.
      const key =
        rec === undefined
          ? await keys.create()
          : { signer: await keys.signerOf(login.key, login.sessionId ?? '(being logged in)', rec), record: rec };
      made = { key: login.key, record: key.record };
      return key;
    }).catch(async (error: unknown) => {
      // The login is used up: a browser's key made for it goes (a key in the record went with it).
      if (made !== undefined) await (await this.#dpopKeys())?.forget(made.key, made.record).catch(() => {});
      throw error;
    });
    const sessionId = (options.sessionId ?? done.sessionId ?? done.claims?.sub) as string;
    const extra = { scope: done.scope, claims: done.claims, dpop: done.dpop };
    return this.#save(
      sessionId,
      this.#key(sessionId),
      'authorization_code',
      done.tokens,
      options.replace === true,
      life,
      extra,
    );
  }

  /** Whether a stored session can serve a `reuse` login instead of asking for new tokens. */
  #usable(rec: SessionRecord): boolean {
    return (
      rec.status === 'active' &&
      !hasEnded(rec) &&
      (!rec.tokens.needsRenewal(this.refreshSkewMs) || rec.renewBy !== 'none')
    );
  }

  /**
   * Stores tokens obtained without the lock (interactive logins, adopted responses) under it,
   * unless the key holds a session this manager may not overwrite.
   */
  #save(
    sessionId: string,
    key: string,
    grant: string,
    tokens: TokenSet,
    replace: boolean,
    life: { sessionTtlMs?: number; idleTtlMs?: number },
    extra: { scope?: string; claims?: Record<string, unknown>; dpop?: DpopRecord },
  ): Promise<Session> {
    return this.#withLock(key, async () => {
      await this.#existing(sessionId, key, replace);
      return this.#create(sessionId, key, grant, tokens, life, extra);
    });
  }

  /**
   * Stores tokens obtained elsewhere (a token endpoint response) as a session. Takes the same
   * `replace` and lifetimes as {@link login}.
   */
  async adopt(
    sessionId: string,
    response: unknown,
    options: Pick<LoginOptions, 'replace' | 'sessionTtlMs' | 'idleTtlMs'> = {},
  ): Promise<Session> {
    const key = this.#key(sessionId);
    // Obtained elsewhere, at a time we do not know: no lifetime to cap the renewal margin by.
    const tokens = TokenSet.fromResponse(response).with({ issuedAt: undefined });
    const life = { ...this.#lifetimes, ...lifetimes(options, 'adopt()') };
    return this.#save(sessionId, key, 'adopt', tokens, options.replace === true, life, {});
  }

  /**
   * The session stored under `key` before a login, if it is one this manager may overwrite.
   * Another server's or client's session (or one this manager cannot decrypt: with encryption,
   * another app's) is refused unless `replace`; a corrupt record is replaced, as documented.
   */
  async #existing(sessionId: string, key: string, replace: boolean): Promise<SessionRecord | undefined> {
    let entry: StoreEntry | undefined;
    try {
      entry = await this.store.get(key);
    } catch (error) {
      // Stores never write over a record they cannot read; a login replaces it by deleting it.
      if (isTokenkeeperError(error, 'TOKENKEEPER_CORRUPT_RECORD')) await this.store.delete(key);
      else if (!replace) throw error;
      return undefined;
    }
    if (entry === undefined) return undefined;
    let rec: SessionRecord;
    try {
      rec = decodeSession(key, entry.value);
    } catch {
      return undefined; // not a session at all: a new login repairs it
    }
    if (replace) return undefined;
    checkBinding(rec, this.#binding, sessionId, key);
    return rec;
  }

  async #create(
    sessionId: string,
    key: string,
    grant: string,
    tokens: TokenSet,
    life: { sessionTtlMs?: number; idleTtlMs?: number },
    extra: { scope?: string; claims?: Record<string, unknown>; dpop?: DpopRecord },
  ): Promise<Session> {
    const now = Date.now();
    const rec: SessionRecord = bound(
      { tokens, grant, renewBy: renewByOf(grant, tokens), status: 'active', createdAt: now, updatedAt: now },
      this.#binding,
    );
    if (extra.scope !== undefined) rec.scope = extra.scope;
    if (extra.claims !== undefined) rec.claims = extra.claims;
    if (extra.dpop !== undefined) rec.dpop = extra.dpop;
    if (life.sessionTtlMs !== undefined) rec.endsAt = now + life.sessionTtlMs;
    if (life.idleTtlMs !== undefined) rec.idleTtlMs = life.idleTtlMs;
    const ttlMs = ttlOf(rec, now);
    await this.store.set(key, encodeSession(rec), ttlMs === undefined ? undefined : { ttlMs });
    this.#events.emit('login', { sessionId, grant });
    if (tokens.refreshToken === undefined && extra.scope?.split(' ').includes('offline_access')) {
      // Signs in fine, then fails with REAUTH_REQUIRED when the access token ends: say so now.
      this.#events.emit('warning', {
        code: 'TOKENKEEPER_NO_REFRESH_TOKEN',
        sessionId,
        message: `The ${grant} login of session ${JSON.stringify(sessionId)} asked for offline_access and the server issued no refresh token: the session needs a new login when its access token expires. Some servers (oidc-provider, Google) issue one only with prompt: 'consent'; check the client is allowed the refresh_token grant.`,
      });
    }
    return this.#session(sessionId, rec);
  }

  /** The stored session, or `undefined` if there is none. Reads the store every time. */
  async get(sessionId: string): Promise<Session | undefined> {
    const key = this.#key(sessionId);
    try {
      const entry = await this.store.get(key);
      const rec = entry === undefined ? undefined : decodeSession(key, entry.value);
      if (rec === undefined || hasEnded(rec)) {
        this.#sessions.delete(sessionId);
        return undefined;
      }
      checkBinding(rec, this.#binding, sessionId, key);
      return this.#session(sessionId, rec);
    } catch (error) {
      throw aboutSession(error, sessionId, key); // a store's or codec's error knows the key only
    }
  }

  /**
   * The stored session if it can still be used, or `undefined` when there is none or it needs a
   * new login (`status: 'reauth-required'`): the restore-or-login idiom in one line,
   * `(await manager.restore(id)) ?? (await login())`. {@link get} returns either.
   */
  async restore(sessionId: string): Promise<Session | undefined> {
    const session = await this.get(sessionId);
    return session?.status === 'active' ? session : undefined;
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
        const key = this.#key(id);
        const dpop = this.#dpopOption?.mode === 'idb' ? await this.#storedDpop(key) : undefined;
        if (await this.store.delete(key)) progress++;
        if (dpop !== undefined) await (await this.#dpopKeys())?.forget(key, dpop).catch(() => {});
        this.#sessions.delete(id);
      }
      removed += progress;
      if (progress === 0) return removed; // nothing could be removed: stop rather than loop
    }
  }

  /** The DPoP part of a stored record, if it can be read (to delete a key kept apart). */
  async #storedDpop(key: string): Promise<DpopRecord | undefined> {
    try {
      const entry = await this.store.get(key);
      return entry === undefined ? undefined : decodeSession(key, entry.value).dpop;
    } catch {
      return undefined;
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
      if (this.#unwatch === undefined && this.store.watch) {
        this.#unwatch = this.store.watch((key) => this.#changed(key));
      }
    } else {
      session._apply(rec);
    }
    this.#sessions.set(sessionId, session); // the most recently used
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
      key === undefined ? [...this.#sessions.ids()] : key.startsWith(prefix) ? [key.slice(prefix.length)] : [];
    for (const id of ids) {
      const k = prefix + id;
      if (this.#sessions.get(id) === undefined || this.#syncing.has(k) || this.#engine.busy(k)) continue;
      this.#syncing.add(k);
      this.store
        .get(k)
        .then((entry) => {
          const session = this.#sessions.get(id);
          if (session === undefined || this.#engine.busy(k)) return;
          if (entry === undefined) {
            session._remove();
            this.#sessions.delete(id);
            this.#events.emit('logout', { sessionId: id, revoked: false });
            return;
          }
          const rec = decodeSession(k, entry.value);
          try {
            // Replaced by another server's or client's session: its tokens are not ours to serve.
            checkBinding(rec, this.#binding, id, k);
          } catch (error) {
            session._remove();
            this.#sessions.delete(id);
            throw error;
          }
          if (rec.updatedAt < session._updatedAt) return; // an older write arrived late
          const wasActive = session.status === 'active';
          session._apply(rec);
          if (wasActive && rec.status === 'reauth-required') {
            this.#events.emit('reauth-required', { sessionId: id, error: reauthRequired(id, k, rec.reason) });
          }
        })
        .catch((error: unknown) => this.#events.emit('error', { sessionId: id, error }))
        .finally(() => this.#syncing.delete(k));
    }
  }

  #warned = false;

  /**
   * A store whose lock covers this process only (keyv, localStorage without Web Locks), shared by
   * several processes or tabs, lets each of them refresh: say so once, on the first lock taken.
   * The memory store is exempt: nothing outside this process can reach it.
   */
  #warnSingleProcessLock(): void {
    if (this.#warned) return;
    this.#warned = true;
    if (this.store.capabilities.crossProcessLock !== false || /^(encrypted\()?memory\)?$/.test(this.store.name)) return;
    this.#events.emit('warning', {
      code: 'TOKENKEEPER_SINGLE_PROCESS_LOCK',
      message:
        `The store ${this.store.name} locks within this process only: processes (or tabs) sharing it can each refresh a session, ` +
        'and a server that rotates refresh tokens then revokes the family. Share it from one process, or use a store with a cross-process lock.',
    });
  }

  #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    this.#warnSingleProcessLock();
    return withLock(this.store, key, fn, {
      ...this.#lock,
      onReleaseError: (error) => this.#events.emit('error', { error }),
    });
  }

  #obtain(grant: LoginGrant, dpop: DpopSigner | undefined): Promise<Obtained> {
    switch (grant.grant) {
      case 'client_credentials':
        return this.#oauth.clientCredentials(grant.scope, dpop);
      case 'password':
        return this.#oauth.password(grant.username, grant.password, grant.scope, dpop);
      case 'authorization_code':
        return this.#oauth.authorizationCode(grant.code, grant.redirectUri, grant.codeVerifier, dpop);
      case 'refresh_token':
        return this.#oauth.refresh(grant.refreshToken, grant.scope, undefined, dpop).then((tokens) => ({ tokens }));
      case 'token_exchange':
        return this.#oauth.tokenExchange(exchangeParameters(grant), dpop);
      case 'device_code':
        return import('./login/device.js').then((m) => m.deviceLogin(this.#oauth, grant, dpop));
    }
  }

  /**
   * The DPoP signer of a session's record: `undefined` for a bearer session; a typed error for a
   * DPoP-bound one this manager cannot sign for (no `dpop` option, a missing or bad key).
   */
  #signerOf(key: string, sessionId: string, rec: SessionRecord): Promise<DpopSigner | undefined> {
    if (rec.dpop === undefined) return Promise.resolve(undefined);
    if (this.#dpopOption === undefined) {
      return Promise.reject(
        new TokenkeeperError(
          'TOKENKEEPER_DPOP',
          `The session ${JSON.stringify(sessionId)} is DPoP-bound: its tokens work only with a proof. Create the manager with the dpop option.`,
          { key, sessionId },
        ),
      );
    }
    const dpop = rec.dpop;
    return this.#dpopKeys().then((keys) => (keys as DpopKeys).signerOf(key, sessionId, dpop));
  }

  /** The DPoP key machinery, loaded on first use (`undefined` without the dpop option). */
  #dpopKeys(): Promise<DpopKeys | undefined> {
    const checked = this.#dpopOption;
    if (checked === undefined) return Promise.resolve(undefined);
    this.#dpopLoaded ??= import('./dpop.js').then((m) => new m.DpopKeys(checked, this.store.name));
    return this.#dpopLoaded;
  }

  async #logout(session: Session, options: LogoutOptions): Promise<LogoutResult> {
    const key = this.#key(session.id);
    return this.#withLock(key, async () => {
      const entry = await this.store.get(key).catch(() => undefined);
      let stored: SessionRecord | undefined;
      try {
        if (entry) stored = decodeSession(key, entry.value);
      } catch {}
      const result =
        options.revoke === false
          ? { revoked: false, refreshToken: 'skipped' as const, accessToken: 'skipped' as const }
          : await (await import('./revocation.js')).revokeAll(
              this.#oauth,
              stored?.tokens ?? session.tokens,
              () => (stored === undefined ? Promise.resolve(undefined) : this.#signerOf(key, session.id, stored)),
              (error) => this.#events.emit('error', { sessionId: session.id, error }),
            );
      await this.store.delete(key);
      // The key goes with the session (a key kept in IndexedDB is deleted there).
      if (stored?.dpop !== undefined) {
        await (await this.#dpopKeys())
          ?.forget(key, stored.dpop)
          .catch((error: unknown) => this.#events.emit('error', { sessionId: session.id, error }));
      }
      this.#sessions.delete(session.id);
      this.#events.emit('logout', { sessionId: session.id, revoked: result.revoked });
      return result;
    });
  }
}

/** Validated `sessionTtlMs` / `idleTtlMs` (positive numbers of ms, or absent). */
function lifetimes(
  options: { sessionTtlMs?: unknown; idleTtlMs?: unknown },
  where: string,
): { sessionTtlMs?: number; idleTtlMs?: number } {
  const out: { sessionTtlMs?: number; idleTtlMs?: number } = {};
  for (const name of ['sessionTtlMs', 'idleTtlMs'] as const) {
    const v = options[name];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        `${where}: ${name} must be a positive number of milliseconds, got ${String(v)}.`,
      );
    }
    out[name] = v;
  }
  return out;
}

/** A positive number of milliseconds, or with `whole`, a positive whole number (a count). */
function positiveMs(name: string, value: unknown, whole = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (whole && !Number.isSafeInteger(value))) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${name} must be a positive ${whole ? 'whole number' : 'number of milliseconds'}.`,
    );
  }
  return value;
}

/** Renewals a manager runs at once, by default (see `RenewalTurns`). */
const DEFAULT_MAX_RENEWALS = 32;

function nonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${name} must be a non-negative number of milliseconds.`,
    );
  }
  return value;
}

/**
 * The OAuth client of a manager created without a server or client: every use is a typed error
 * (such a manager hosts sessions; `tokenkeeper/mcp` renews them through a manager per server).
 */
function serverless(): OAuthClient {
  const fail = () => {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'This SessionManager was created without an issuer and a client, so it cannot ask a server for tokens. ' +
        'Give issuer (or tokenEndpoint) and client to log in with it.',
    );
  };
  return new Proxy({}, { get: (_target, name) => (name === 'then' ? undefined : fail) }) as unknown as OAuthClient;
}

function looksLikeStore(store: unknown): store is Store {
  const s = store as Record<string, unknown>;
  return (
    typeof s === 'object' &&
    s !== null &&
    ['get', 'set', 'delete', 'keys', 'lock', 'close'].every((m) => typeof s[m] === 'function')
  );
}
