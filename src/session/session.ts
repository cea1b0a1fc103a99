import { TokenkeeperError } from '../errors.js';
import { isoTime, type TokenSet } from '../token/token-set.js';
import type { DpopSigner } from './dpop-options.js';
import { hasEnded, type SessionRecord } from './record.js';

/** What a Session needs from its manager. */
export interface SessionHost {
  readonly refreshSkewMs: number;
  readonly fetch: typeof fetch;
  renew(session: Session, stale: TokenSet | undefined, force: boolean): Promise<TokenSet>;
  logout(session: Session, options: LogoutOptions): Promise<LogoutResult>;
  /** Extends the session's idle lifetime in the store (in the background). */
  touch(session: Session): void;
  /** The store key of the session's record. */
  keyOf(session: Session): string;
  /** A background renewal failed: the manager emits `error` (callers see it once the token is unusable). */
  report(session: Session, error: unknown): void;
  /** The DPoP signer of a session whose tokens are bound to a key; `undefined` for bearer sessions. */
  dpop(session: Session, record: SessionRecord): Promise<DpopSigner | undefined>;
  /** The server's OpenID Connect endpoints (from its discovery document) and the client's id. */
  oidc(): Promise<{ userinfoEndpoint?: string; endSessionEndpoint?: string; clientId: string }>;
}

/** What {@link Session.info} tells: everything about a session but its secrets. */
export interface SessionInfo {
  id: string;
  status: SessionRecord['status'];
  /** Why a new login is needed, when `status` is `reauth-required`. */
  reason: string | undefined;
  grant: string;
  scope: string | undefined;
  /** The server (issuer or token endpoint) and client the session belongs to. */
  issuer: string | undefined;
  clientId: string | undefined;
  /** When the access token expires (ISO 8601), if the server said. */
  expiresAt: string | undefined;
  refreshable: boolean;
  createdAt: string;
  /** When a renewal last stored new tokens. */
  lastRenewedAt: string | undefined;
  /** When the session ends whatever happens (`sessionTtlMs`). */
  endsAt: string | undefined;
}

/** A token expiring sooner than this (or than half the renewal margin) is renewed while the caller waits. */
const URGENT_MS = 5_000;
/** The longest delay before a background renewal starts. */
const MAX_JITTER_MS = 2_000;

/** The longest delay a timer takes (about 24.8 days); a longer one is armed again when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Clears the freshness timer of a session that was garbage-collected. */
const freshTimers = new FinalizationRegistry<ReturnType<typeof setTimeout>>((timer) => clearTimeout(timer));

/** A 401 for an access token younger than this is the API's answer, not a reason to renew. */
const JUST_ISSUED_MS = 10_000;

export interface EndSessionOptions {
  /** Where the server sends the browser back after the logout: as registered at the server. */
  postLogoutRedirectUri?: string;
  /** Given back to `postLogoutRedirectUri` as `state`. */
  state?: string;
}

export interface LogoutOptions {
  /**
   * Revoke the tokens at the server first (RFC 7009), when it has a revocation endpoint: the
   * refresh token, then the access token (servers need not end a refresh token's access tokens
   * with it, and some do not). Default true.
   */
  revoke?: boolean;
}

/**
 * What became of one token at logout: `revoked` (the server confirmed it), `refused` (the server
 * answered with an error), `failed` (no answer: unreachable, timed out, 5xx; the access token is
 * then not tried, and reported `failed` too), `unsupported` (the
 * server has no revocation endpoint), `expired` (an access token already past its expiry: not
 * sent), `none` (the session held no such token), `skipped` (`revoke: false`). A refusal or a
 * failure is also emitted as an `error` event.
 */
export type RevocationOutcome = 'revoked' | 'refused' | 'failed' | 'unsupported' | 'expired' | 'none' | 'skipped';

export interface LogoutResult {
  /**
   * True when the server confirmed the revocation of every live token the session held (its
   * refresh token, and its access token unless that had expired already).
   */
  revoked: boolean;
  refreshToken: RevocationOutcome;
  accessToken: RevocationOutcome;
}

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * One stored session: hands out a valid access token, refreshing it when needed. Get one from
 * {@link SessionManager.login}, {@link SessionManager.adopt} or {@link SessionManager.get}; a
 * manager hands out one Session object per id.
 */
export class Session {
  readonly id: string;
  readonly #host: SessionHost;
  #record: SessionRecord;
  /** Set when the store said the record is gone (logged out in another tab): ask the store again. */
  #removed = false;
  /** The renewal a 401 started, and the access token it replaces: concurrent 401s for that token share it. */
  #renewal401: { for: string; fresh: Promise<TokenSet> } | undefined;
  /** An access token the API refused straight after a 401 renewal issued it: its 401s are the API's answer. */
  #refusedWhenFresh: string | undefined;
  /** When this process last extended the idle lifetime in the store, and when it ends here. */
  #touchedAt = Date.now();
  #idleEndsAt: number | undefined;

  /** @internal */
  constructor(host: SessionHost, id: string, record: SessionRecord) {
    this.#host = host;
    this.id = id;
    this.#record = record;
    this.#idleEndsAt = record.idleTtlMs === undefined ? undefined : Date.now() + record.idleTtlMs;
  }

  /** The current tokens (redacted when logged). May be stale: prefer {@link getAccessToken}. */
  get tokens(): TokenSet {
    return this.#record.tokens;
  }

  /** `active`, or `reauth-required` once the server refused to renew the session. */
  get status(): SessionRecord['status'] {
    return this.#record.status;
  }

  /** The grant the session was created with. */
  get grant(): string {
    return this.#record.grant;
  }

  /**
   * The validated ID token claims of an OpenID Connect login (`sub`, `iss`, `aud`, `email`, ...),
   * or `undefined` when the login had no ID token. Only the claims are stored, never the ID token.
   */
  get claims(): Readonly<Record<string, unknown>> | undefined {
    return this.#record.claims;
  }

  /**
   * A valid access token: from memory while fresh (no store round trip), otherwise renewed:
   * once per process at a time, under the store's lock, adopting a token another process
   * already stored instead of asking the server again.
   *
   * @param options.forceRefresh renew even though the token looks fresh (say, after a 401)
   * @throws TokenkeeperError `TOKENKEEPER_REAUTH_REQUIRED` when the session needs a new login,
   *   `TOKENKEEPER_NO_SESSION` when it was logged out, `TOKENKEEPER_TOKEN_ENDPOINT` when the
   *   server could not be reached (the stored session is unchanged), `TOKENKEEPER_LOCK_TIMEOUT`.
   */
  async getAccessToken(options?: { forceRefresh?: boolean }): Promise<string> {
    const rec = this.#record;
    // The hot path: no clock read while a timer has not said the token needs renewal (see
    // #freshFor). Sessions with an idle lifetime read it once, below.
    if (rec === this.#freshFor && !this.#removed && this.#idleEndsAt === undefined && options?.forceRefresh !== true) {
      return rec.tokens.accessToken;
    }
    const tokens = rec.tokens;
    const now = Date.now();
    this.#checkLifetime(now);
    const usable = options?.forceRefresh !== true && !this.#removed && rec.status === 'active';
    if (usable && !tokens.needsRenewal(this.#host.refreshSkewMs, now)) {
      const renewAt =
        tokens.expiresAt === undefined
          ? Number.POSITIVE_INFINITY
          : tokens.expiresAt - tokens.renewalMargin(this.#host.refreshSkewMs);
      if (rec !== this.#freshFor) this.#markFresh(rec, Math.min(renewAt, rec.endsAt ?? Number.POSITIVE_INFINITY), now);
      return tokens.accessToken;
    }
    // Inside the renewal margin but not about to expire: hand out the valid token now and renew
    // in the background; only a caller whose token is (nearly) unusable waits for the renewal.
    const margin = tokens.renewalMargin(this.#host.refreshSkewMs);
    if (usable && !tokens.isExpired(Math.min(URGENT_MS, margin / 2), now)) {
      this.#renewInBackground(tokens, margin);
      return tokens.accessToken;
    }
    return (await this.#host.renew(this, tokens, options?.forceRefresh === true)).accessToken;
  }

  /** One background renewal at a time, started after a jitter, retried after a failure with back-off. */
  #background: Promise<void> | undefined;
  #backgroundRetryAt = 0;
  #backgroundFailures = 0;

  #renewInBackground(tokens: TokenSet, margin: number): void {
    if (this.#background !== undefined || Date.now() < this.#backgroundRetryAt) return;
    // Spread a fleet's renewals over a little of the margin: one process renews, the others
    // find its token when they take the lock, instead of all queueing for it at one instant.
    const jitter = Math.random() * Math.min(margin / 4, MAX_JITTER_MS);
    this.#background = new Promise<void>((resolve) => setTimeout(resolve, jitter))
      .then(() => this.#host.renew(this, tokens, false))
      .then(
        () => {
          this.#backgroundFailures = 0;
        },
        (error: unknown) => {
          this.#backgroundFailures++;
          this.#backgroundRetryAt = Date.now() + Math.min(30_000, 500 * 2 ** this.#backgroundFailures);
          this.#host.report(this, error);
        },
      )
      .finally(() => {
        this.#background = undefined;
      });
  }

  /**
   * The record whose token {@link getAccessToken} last found fresh. A timer clears it at the
   * token's renewal point or the session's end, whichever comes first, so a fresh token costs no
   * clock read (on a VM a clock read can cost as much as the rest of the call). Timers run on a
   * monotonic clock: after the system clock jumps ahead, a token is renewed when its timer says,
   * not earlier. A new record (a renewal, another process's write) is a new object: its own
   * timer is set when it is first found fresh.
   */
  #freshFor: SessionRecord | undefined;
  #freshTimer: ReturnType<typeof setTimeout> | undefined;

  #markFresh(rec: SessionRecord, until: number, now: number): void {
    this.#freshFor = rec;
    clearTimeout(this.#freshTimer);
    freshTimers.unregister(this);
    if (until === Number.POSITIVE_INFINITY) return;
    // The timer holds the session weakly, and is cleared if the session is collected first, so a
    // process touching many sessions keeps none of them alive for it.
    const self = new WeakRef(this);
    const timer = setTimeout(
      () => {
        const session = self.deref();
        if (session !== undefined && session.#freshFor === rec) session.#freshFor = undefined;
      },
      Math.min(MAX_TIMER_MS, until - now),
    );
    (timer as { unref?: () => void }).unref?.();
    freshTimers.register(this, timer, this);
    this.#freshTimer = timer;
  }

  /**
   * An ended session (absolute or idle lifetime) fails here, without a store round trip; a live
   * one with an idle lifetime has it extended, at most one store write per quarter of it (and
   * per minute), in the background.
   */
  #checkLifetime(now: number): void {
    const rec = this.#record;
    if (hasEnded(rec, now) || (this.#idleEndsAt !== undefined && this.#idleEndsAt <= now)) {
      throw new TokenkeeperError(
        'TOKENKEEPER_NO_SESSION',
        `The session ${JSON.stringify(this.id)} has ended (its ${hasEnded(rec, now) ? 'sessionTtlMs' : 'idleTtlMs'} lifetime passed). Log in again.`,
        { key: this.#host.keyOf(this), sessionId: this.id },
      );
    }
    if (rec.idleTtlMs === undefined) return;
    this.#idleEndsAt = now + rec.idleTtlMs;
    if (now - this.#touchedAt >= Math.min(rec.idleTtlMs / 4, 60_000)) {
      this.#touchedAt = now;
      this.#host.touch(this);
    }
  }

  /**
   * The signed-in user's claims from the server's userinfo endpoint (OpenID Connect Core §5.3),
   * asked with this session's access token through {@link fetch} (so renewed on a 401, and with
   * a DPoP proof for a DPoP session). When the session has the ID token's claims, the answer's
   * `sub` must be the same user's (§5.3.2).
   * @throws TokenkeeperError `TOKENKEEPER_USERINFO` for an error answer, a signed (JWT) or
   *   non-JSON answer, or another user's `sub`; `TOKENKEEPER_INVALID_ARGUMENT` when the server
   *   names no userinfo endpoint
   */
  async userinfo(): Promise<Record<string, unknown> & { sub: string }> {
    // Loaded on first use: a browser app that never asks pays nothing up front.
    const { userinfoOf } = await import('./oidc-session.js');
    return userinfoOf(this, await this.#host.oidc());
  }

  /**
   * The URL that ends the user's session at the identity provider too (OpenID Connect
   * RP-Initiated Logout 1.0): send the browser there after {@link logout}, which ends it here.
   * It carries `client_id`, and `post_logout_redirect_uri` (registered at the server) and `state`
   * when given. No `id_token_hint`: tokenkeeper does not keep the ID token (only its validated
   * claims), so servers ask the user to confirm the logout.
   * @throws TokenkeeperError `TOKENKEEPER_INVALID_ARGUMENT` when the server names no
   *   `end_session_endpoint`, or for a redirect URI that is not an absolute URL
   */
  async endSessionUrl(options: EndSessionOptions = {}): Promise<string> {
    const { endSessionUrlOf } = await import('./oidc-session.js');
    return endSessionUrlOf(await this.#host.oidc(), options);
  }

  /** Everything about the session but its secrets: for logs, support and admin pages. */
  info(): SessionInfo {
    const r = this.#record;
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : isoTime(ms));
    return {
      id: this.id,
      status: r.status,
      reason: r.reason,
      grant: r.grant,
      scope: r.tokens.scope ?? r.scope,
      issuer: r.issuer,
      clientId: r.clientId,
      expiresAt: iso(r.tokens.expiresAt),
      refreshable: r.renewBy !== 'none',
      createdAt: isoTime(r.createdAt),
      lastRenewedAt: iso(r.renewedAt),
      endsAt: iso(r.endsAt),
    };
  }

  /**
   * `fetch` with the `Authorization` header set. On a 401 it renews the token and retries once,
   * at most once per token: each access token gets one renewal on a 401 (a server that ends
   * tokens early is followed however often it does), while a 401 for a token that was just
   * issued (under 10 s ago), that a 401 already renewed, or that the API refused straight after
   * such a renewal, is returned as it is, so an API that always answers 401 costs one renewal,
   * not one per call. Bodies are replayed from a clone: a stream body needs `duplex: 'half'`.
   */
  async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    await this.getAccessToken();
    const used = this.#record.tokens;
    const request = new Request(input, init);
    const first = await this.#send(request.clone(), this.#record);
    if (first.status !== 401) return first;
    // When the server handed out this token (not known for tokens adopted from elsewhere).
    const r = this.#record;
    const obtainedAt = r.tokens === used ? (r.renewedAt ?? (r.grant === 'adopt' ? undefined : r.createdAt)) : undefined;
    const justIssued = obtainedAt !== undefined && Date.now() - obtainedAt < JUST_ISSUED_MS;
    if (justIssued || used.accessToken === this.#refusedWhenFresh) return first;
    await first.body?.cancel().catch(() => {});
    // One renewal per ended token: a 401 for a token that a 401 already renewed uses that renewal.
    let renewal = this.#renewal401;
    if (renewal?.for !== used.accessToken) {
      const fresh = this.#host.renew(this, used, true);
      renewal = { for: used.accessToken, fresh };
      this.#renewal401 = renewal;
      fresh.catch(() => {
        if (this.#renewal401 === renewal) this.#renewal401 = undefined; // a failed renewal may be tried again
      });
    }
    const fresh = await renewal.fresh;
    const retried = await this.#send(request, { ...this.#record, tokens: fresh });
    // Refused even straight after its renewal: the API's answer, not this token's end.
    if (retried.status === 401) this.#refusedWhenFresh = fresh.accessToken;
    return retried;
  }

  /**
   * A DPoP proof (RFC 9449) for a request to `url` with this session's current access token, for
   * your own HTTP client: send it as the `DPoP` header, with `Authorization: DPoP <token>` from
   * {@link getAccessToken}. The proof carries the token's hash (`ath`) and the resource
   * server's latest nonce.
   * @throws TokenkeeperError `TOKENKEEPER_INVALID_ARGUMENT` for a session that is not DPoP-bound
   */
  async dpopProof(method: string, url: string | URL): Promise<string> {
    const accessToken = await this.getAccessToken();
    const signer = await this.#host.dpop(this, this.#record);
    if (signer === undefined) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        `The session ${JSON.stringify(this.id)} is not DPoP-bound: its tokens are bearer tokens, sent without a proof.`,
      );
    }
    return signer.proof(method.toUpperCase(), url, accessToken);
  }

  /**
   * Sends `request` with the tokens of `record`: a bearer header, or for a DPoP session the
   * `DPoP` scheme and a proof, sent again once with the nonce a resource server asks for.
   */
  async #send(request: Request, record: SessionRecord): Promise<Response> {
    const tokens = record.tokens;
    const signer = await this.#host.dpop(this, record);
    if (signer === undefined) return this.#host.fetch(authorized(request, tokens));
    for (let nonceRetry = false; ; nonceRetry = true) {
      const proof = await signer.proof(request.method, request.url, tokens.accessToken);
      const response = await this.#host.fetch(authorized(nonceRetry ? request : request.clone(), tokens, proof));
      signer.learn(response, request.url);
      const challenge = response.headers.get('www-authenticate') ?? '';
      const wantsNonce = response.status === 401 && /\bDPoP\b[\s\S]*error="use_dpop_nonce"/i.test(challenge);
      if (!wantsNonce || nonceRetry || !response.headers.has('dpop-nonce')) return response;
      await response.body?.cancel().catch(() => {});
    }
  }

  /** Revokes the tokens (when the server supports it and `revoke` is not false), then deletes the session. */
  logout(options: LogoutOptions = {}): Promise<LogoutResult> {
    return this.#host.logout(this, options);
  }

  /** @internal the manager updates the session after reading or writing its record */
  _apply(record: SessionRecord): void {
    this.#record = record;
    this.#removed = false;
    if (record.idleTtlMs !== undefined) this.#idleEndsAt ??= Date.now() + record.idleTtlMs;
  }

  /** @internal the record was deleted elsewhere: the next call asks the store (and fails) */
  _remove(): void {
    this.#removed = true;
  }

  /** @internal when the record was last written, to never apply an older one over it */
  get _updatedAt(): number {
    return this.#record.updatedAt;
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      status: this.#record.status,
      reason: this.#record.reason,
      grant: this.#record.grant,
      tokens: this.#record.tokens.toJSON(),
    };
  }

  toString(): string {
    return `Session(${JSON.stringify(this.id)}, ${this.#record.status})`;
  }

  [inspectSymbol](): string {
    return `Session ${JSON.stringify(this.toJSON())}`;
  }
}

function authorized(request: Request, tokens: TokenSet, proof?: string): Request {
  const headers = new Headers(request.headers);
  headers.set('authorization', tokens.authorizationHeader());
  if (proof !== undefined) headers.set('dpop', proof);
  return new Request(request, { headers });
}

export function reauthRequired(
  sessionId: string,
  key: string,
  reason: string | undefined,
  cause?: unknown,
): TokenkeeperError {
  const status = (cause as { status?: unknown } | undefined)?.status;
  const why =
    reason === 'renewal-interrupted'
      ? ' (an earlier renewal was interrupted after its request was sent: the server rotated the refresh token and the answer was lost)'
      : reason === 'refresh-refused'
        ? ` (the server refused the refresh token${typeof status === 'number' ? ` with HTTP ${status}` : ''} and no error code)`
        : reason
          ? ` (the server said ${reason})`
          : '';
  return new TokenkeeperError(
    'TOKENKEEPER_REAUTH_REQUIRED',
    `The session ${JSON.stringify(sessionId)} needs a new login${why}. ` +
      'Its stored record is kept for diagnosis until you log in again or log it out.',
    { cause, key, sessionId },
  );
}
