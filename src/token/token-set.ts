import { TokenkeeperError } from '../errors.js';
import { describeType } from '../store/kit/keys.js';

/** The fields of a token endpoint response (RFC 6749 §5.1), plus whatever else the server sends. */
export interface TokenResponse {
  access_token: string;
  token_type?: string;
  expires_in?: number | string;
  refresh_token?: string;
  scope?: string;
  id_token?: string;
  [extra: string]: unknown;
}

/**
 * The storable form of a {@link TokenSet}: plain JSON with every secret in it. Produced by
 * {@link TokenSet.toStorable} and read back by {@link TokenSet.fromStorable}; never log it.
 */
export interface StorableTokenSet {
  accessToken: string;
  tokenType: string;
  /** Milliseconds since the epoch; absent when the server gave no lifetime. */
  expiresAt?: number;
  refreshToken?: string;
  scope?: string;
  idToken?: string;
  /** Fields of the token response tokenkeeper does not model (Podio's `ref`, for one), kept as sent. */
  extra?: Record<string, unknown>;
  /** When the token was obtained (ms since the epoch): with `expiresAt`, its lifetime. */
  issuedAt?: number;
}

const KNOWN = new Set(['access_token', 'token_type', 'expires_in', 'refresh_token', 'scope', 'id_token']);

/**
 * The longest lifetime a token is taken to have: ten years. A server that says more (`expires_in`
 * of 1e13 seconds, say) gets ten years: far beyond any real token, and always a valid date.
 */
export const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;
const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * An access token with what came with it. Immutable. The secrets live in private fields, and
 * `toJSON`, `toString` and `util.inspect` show them redacted, so a TokenSet can be logged.
 * Persist one with {@link TokenSet.toStorable}, not `JSON.stringify`.
 */
export class TokenSet {
  readonly #accessToken: string;
  readonly #refreshToken: string | undefined;
  readonly #idToken: string | undefined;
  readonly tokenType: string;
  /** When the access token expires, in milliseconds since the epoch; `undefined` if unknown. */
  readonly expiresAt: number | undefined;
  readonly scope: string | undefined;
  /** Non-standard response fields, kept as the server sent them. */
  readonly extra: Readonly<Record<string, unknown>>;
  /** When the token was obtained (ms since the epoch), when known. */
  readonly issuedAt: number | undefined;

  private constructor(s: StorableTokenSet) {
    this.#accessToken = s.accessToken;
    this.#refreshToken = s.refreshToken;
    this.#idToken = s.idToken;
    this.tokenType = s.tokenType;
    this.expiresAt = s.expiresAt;
    this.scope = s.scope;
    this.extra = Object.freeze({ ...(s.extra ?? {}) });
    this.issuedAt = s.issuedAt;
    Object.freeze(this);
  }

  /**
   * Builds a TokenSet from a token endpoint response. `expires_in` (seconds, relative) becomes
   * the absolute {@link expiresAt}, computed from `now` (the time the response arrived).
   * @throws TokenkeeperError `TOKENKEEPER_INVALID_TOKEN_RESPONSE` when `access_token` is missing
   * or `expires_in` is negative or not a number.
   */
  static fromResponse(response: TokenResponse | unknown, now: number = Date.now()): TokenSet {
    if (typeof response !== 'object' || response === null || Array.isArray(response)) {
      throw invalidResponse(`the response is ${describeType(response)}, not an object`);
    }
    const r = response as Record<string, unknown>;
    if (typeof r.access_token !== 'string' || r.access_token.length === 0) {
      throw invalidResponse('it has no access_token');
    }
    let expiresAt: number | undefined;
    if (r.expires_in !== undefined && r.expires_in !== null) {
      const seconds = typeof r.expires_in === 'string' ? Number(r.expires_in) : r.expires_in;
      if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
        throw invalidResponse('its expires_in is not a non-negative number of seconds');
      }
      expiresAt = now + Math.min(seconds, MAX_LIFETIME_SECONDS) * 1000;
    }
    for (const field of ['token_type', 'refresh_token', 'scope', 'id_token'] as const) {
      if (r[field] !== undefined && r[field] !== null && typeof r[field] !== 'string') {
        throw invalidResponse(`its ${field} is ${describeType(r[field])}, not a string`);
      }
    }
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) if (!KNOWN.has(k)) extra[k] = v;
    return new TokenSet({
      accessToken: r.access_token,
      tokenType: (r.token_type as string | undefined) ?? 'Bearer',
      expiresAt,
      refreshToken: (r.refresh_token as string | null | undefined) ?? undefined,
      scope: (r.scope as string | null | undefined) ?? undefined,
      idToken: (r.id_token as string | null | undefined) ?? undefined,
      extra,
      issuedAt: now,
    });
  }

  /**
   * Reads back what {@link toStorable} wrote.
   * @throws TokenkeeperError `TOKENKEEPER_CORRUPT_RECORD` when the value is not a storable token set.
   */
  static fromStorable(value: unknown): TokenSet {
    const v = value as Partial<StorableTokenSet> | null;
    const ok =
      typeof v === 'object' &&
      v !== null &&
      typeof v.accessToken === 'string' &&
      v.accessToken.length > 0 &&
      typeof v.tokenType === 'string' &&
      (v.expiresAt === undefined || (typeof v.expiresAt === 'number' && Number.isFinite(v.expiresAt))) &&
      optionalString(v.refreshToken) &&
      optionalString(v.scope) &&
      optionalString(v.idToken) &&
      (v.issuedAt === undefined || (typeof v.issuedAt === 'number' && Number.isFinite(v.issuedAt))) &&
      (v.extra === undefined || (typeof v.extra === 'object' && v.extra !== null && !Array.isArray(v.extra)));
    if (!ok) {
      throw new TokenkeeperError(
        'TOKENKEEPER_CORRUPT_RECORD',
        'The stored token set is not in the format tokenkeeper writes (was it edited by hand?).',
      );
    }
    return new TokenSet(v as StorableTokenSet);
  }

  get accessToken(): string {
    return this.#accessToken;
  }

  get refreshToken(): string | undefined {
    return this.#refreshToken;
  }

  get idToken(): string | undefined {
    return this.#idToken;
  }

  /**
   * True when the token has expired, or will within `skewMs`. A token without a known lifetime
   * never counts as expired: the API's 401 is then the only signal.
   */
  isExpired(skewMs = 0, now: number = Date.now()): boolean {
    return this.expiresAt !== undefined && this.expiresAt - skewMs <= now;
  }

  /**
   * True when the token should be renewed: it expires within `skewMs`, a margin never more than
   * half the token's lifetime (when known), so tokens that live shorter than twice the margin are
   * renewed once per lifetime, not on every call.
   */
  needsRenewal(skewMs: number, now: number = Date.now()): boolean {
    return this.isExpired(this.renewalMargin(skewMs), now);
  }

  /** The margin {@link needsRenewal} uses: `skewMs`, at most half the token's lifetime. */
  renewalMargin(skewMs: number): number {
    if (this.expiresAt === undefined || this.issuedAt === undefined) return skewMs;
    return Math.min(skewMs, Math.max(0, (this.expiresAt - this.issuedAt) / 2));
  }

  /** Seconds until expiry (negative once expired), or `undefined` if unknown. */
  expiresIn(now: number = Date.now()): number | undefined {
    return this.expiresAt === undefined ? undefined : Math.floor((this.expiresAt - now) / 1000);
  }

  /** The `Authorization` header value: `Bearer <token>` (or the server's token type). */
  authorizationHeader(): string {
    const lower = this.tokenType.toLowerCase();
    const type = lower === 'bearer' ? 'Bearer' : lower === 'dpop' ? 'DPoP' : this.tokenType;
    return `${type} ${this.#accessToken}`;
  }

  /** A copy with other fields, for example a refresh response that omits the refresh token. */
  with(changes: Partial<StorableTokenSet>): TokenSet {
    return new TokenSet({ ...this.toStorable(), ...changes });
  }

  /** Plain JSON with every secret, for a store. Round-trips through {@link fromStorable}. */
  toStorable(): StorableTokenSet {
    const s: StorableTokenSet = { accessToken: this.#accessToken, tokenType: this.tokenType };
    if (this.expiresAt !== undefined) s.expiresAt = this.expiresAt;
    if (this.#refreshToken !== undefined) s.refreshToken = this.#refreshToken;
    if (this.scope !== undefined) s.scope = this.scope;
    if (this.#idToken !== undefined) s.idToken = this.#idToken;
    if (Object.keys(this.extra).length > 0) s.extra = { ...this.extra };
    if (this.issuedAt !== undefined) s.issuedAt = this.issuedAt;
    return s;
  }

  /** The redacted view used by `JSON.stringify`, loggers and `util.inspect`. */
  toJSON(): Record<string, unknown> {
    return {
      accessToken: '[redacted]',
      tokenType: this.tokenType,
      expiresAt: this.expiresAt === undefined ? undefined : isoTime(this.expiresAt),
      refreshToken: this.#refreshToken === undefined ? undefined : '[redacted]',
      idToken: this.#idToken === undefined ? undefined : '[redacted]',
      scope: this.scope,
      extra: Object.keys(this.extra).length > 0 ? Object.keys(this.extra) : undefined,
    };
  }

  toString(): string {
    const expiry = this.expiresAt === undefined ? 'no expiry' : `expires ${isoTime(this.expiresAt)}`;
    return `TokenSet(${this.tokenType}, ${expiry}${this.#refreshToken ? ', refreshable' : ''})`;
  }

  [inspectSymbol](): string {
    return `TokenSet ${JSON.stringify(this.toJSON())}`;
  }
}

/** An ISO date for any number: a time no Date can hold (hand-edited records) prints as the number. */
export function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

function optionalString(v: unknown): boolean {
  return v === undefined || typeof v === 'string';
}

function invalidResponse(why: string): TokenkeeperError {
  return new TokenkeeperError(
    'TOKENKEEPER_INVALID_TOKEN_RESPONSE',
    `The token endpoint response is not usable: ${why}. Check the token endpoint URL and the grant parameters.`,
  );
}
