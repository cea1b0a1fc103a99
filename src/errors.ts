/**
 * The stable `code` of every {@link TokenkeeperError}, by name: `error.code ===
 * ErrorCodes.REAUTH_REQUIRED`. Messages say what happened and what to do next; they never
 * contain a token, a client secret or a record's contents.
 */
export const ErrorCodes = {
  /** A bad argument or option: the message names it. */
  INVALID_ARGUMENT: 'TOKENKEEPER_INVALID_ARGUMENT',
  /** A store key that is empty, too long, or holds NUL or an unpaired surrogate. */
  INVALID_KEY: 'TOKENKEEPER_INVALID_KEY',
  /** A record that is not a plain JSON object. */
  INVALID_RECORD: 'TOKENKEEPER_INVALID_RECORD',
  /** The token endpoint answered something that is not a token response. */
  INVALID_TOKEN_RESPONSE: 'TOKENKEEPER_INVALID_TOKEN_RESPONSE',
  /** A compare-and-set found another version: read again and retry. */
  VERSION_CONFLICT: 'TOKENKEEPER_VERSION_CONFLICT',
  /** A lock was not had within `waitMs`; names the key and, where known, the holder. */
  LOCK_TIMEOUT: 'TOKENKEEPER_LOCK_TIMEOUT',
  /** Something at a key the store cannot read as its record; never written over. */
  CORRUPT_RECORD: 'TOKENKEEPER_CORRUPT_RECORD',
  /** An encrypted record that no configured key opens (or that was tampered with). */
  DECRYPT_FAILED: 'TOKENKEEPER_DECRYPT_FAILED',
  /** The store did not answer; the operation was not applied, or its outcome is unknown. */
  STORE_UNAVAILABLE: 'TOKENKEEPER_STORE_UNAVAILABLE',
  /** The store is out of space (a browser quota); nothing was written. */
  STORE_FULL: 'TOKENKEEPER_STORE_FULL',
  /** A folder or file other users could read. */
  INSECURE_PERMISSIONS: 'TOKENKEEPER_INSECURE_PERMISSIONS',
  /** The store was closed. */
  STORE_CLOSED: 'TOKENKEEPER_STORE_CLOSED',
  /** An endpoint that is not https (loopback aside), or one with credentials in it. */
  INSECURE_ENDPOINT: 'TOKENKEEPER_INSECURE_ENDPOINT',
  /** The server refused the grant (`invalid_grant`). */
  INVALID_GRANT: 'TOKENKEEPER_INVALID_GRANT',
  /** The session needs a new login; `reason` says why. */
  REAUTH_REQUIRED: 'TOKENKEEPER_REAUTH_REQUIRED',
  /** The token endpoint failed; `outcomeUnknown` says whether it may have acted. */
  TOKEN_ENDPOINT: 'TOKENKEEPER_TOKEN_ENDPOINT',
  /** The issuer's discovery document could not be had or used. */
  DISCOVERY_FAILED: 'TOKENKEEPER_DISCOVERY_FAILED',
  /** No such session (never stored, logged out, or its lifetime ended). */
  NO_SESSION: 'TOKENKEEPER_NO_SESSION',
  /** The renewal lock could not be confirmed; nothing was sent. */
  LEASE_LOST: 'TOKENKEEPER_LEASE_LOST',
  /** A stored session of another server or client. */
  SESSION_MISMATCH: 'TOKENKEEPER_SESSION_MISMATCH',
  /** The server refused the client's credentials (`invalid_client`). */
  INVALID_CLIENT: 'TOKENKEEPER_INVALID_CLIENT',
  /** The server refused the scope (`invalid_scope`). */
  INVALID_SCOPE: 'TOKENKEEPER_INVALID_SCOPE',
  /** The server found the request malformed (`invalid_request`). */
  INVALID_REQUEST: 'TOKENKEEPER_INVALID_REQUEST',
  /** The user or server said no (`access_denied`). */
  ACCESS_DENIED: 'TOKENKEEPER_ACCESS_DENIED',
  /** A device login not approved yet (`authorization_pending`, `slow_down`). */
  AUTHORIZATION_PENDING: 'TOKENKEEPER_AUTHORIZATION_PENDING',
  /** A DPoP proof the server refused. */
  DPOP: 'TOKENKEEPER_DPOP',
  /**
   * A login callback whose `state` is missing, unknown, expired or already used (a replay): start
   * the login again.
   */
  LOGIN_STATE: 'TOKENKEEPER_LOGIN_STATE',
  /** A login callback that fails its checks: an `iss` of another server (mix-up), no `code`. */
  AUTHORIZATION_RESPONSE: 'TOKENKEEPER_AUTHORIZATION_RESPONSE',
  /** An ID token that fails validation: signature, `iss`, `aud`, `exp` or `nonce`. */
  ID_TOKEN: 'TOKENKEEPER_ID_TOKEN',
  /** A login that was aborted or timed out before the user finished it. */
  LOGIN_ABORTED: 'TOKENKEEPER_LOGIN_ABORTED',
  /** A session record written by a newer tokenkeeper than this one. */
  RECORD_TOO_NEW: 'TOKENKEEPER_RECORD_TOO_NEW',
  /**
   * The server's userinfo endpoint (OpenID Connect) refused the session's token, answered
   * something that is not the user's claims, or claims of another user (`sub`).
   */
  USERINFO: 'TOKENKEEPER_USERINFO',
} as const;

/**
 * Every error tokenkeeper throws is a {@link TokenkeeperError} with a stable `code` a caller can
 * switch on: one of {@link ErrorCodes}.
 */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface TokenkeeperErrorOptions {
  /** The underlying error, when there is one. Never holds secrets we put there. */
  cause?: unknown;
  /** The store key the error is about, when there is one (always the store key). */
  key?: string;
  /** The session the error is about, when there is one. */
  sessionId?: string;
}

export class TokenkeeperError extends Error {
  readonly code: ErrorCode;
  /** The store key the error is about (for session errors: the session's record key). */
  readonly key: string | undefined;
  /** The session id the error is about, for session errors. */
  readonly sessionId: string | undefined;

  constructor(code: ErrorCode, message: string, options: TokenkeeperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenkeeperError';
    this.code = code;
    this.key = options.key;
    this.sessionId = options.sessionId;
  }
}

/** Who holds a lock, as far as the store knows. */
export interface LockHolder {
  pid?: number;
  host?: string;
  expiresAt?: number;
}

export class LockTimeoutError extends TokenkeeperError {
  readonly holder: LockHolder | undefined;

  constructor(key: string, waitedMs: number, holder?: LockHolder) {
    const who = holder?.pid
      ? ` It is held by pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ''}${
          holder.expiresAt && Number.isFinite(new Date(holder.expiresAt).getTime())
            ? `, lease ending ${new Date(holder.expiresAt).toISOString()}`
            : ''
        }.`
      : '';
    super(
      'TOKENKEEPER_LOCK_TIMEOUT',
      `Could not take the lock on ${JSON.stringify(shortKey(key))} within ${waitedMs} ms.${who} ` +
        'Raise waitMs, or check for a process stuck while holding it; a crashed holder frees the lock when its lease ends.',
      { key },
    );
    this.name = 'LockTimeoutError';
    this.holder = holder;
  }
}

/** True when `error` is a TokenkeeperError, and has `code` if one is given. */
export function isTokenkeeperError(error: unknown, code?: ErrorCode): error is TokenkeeperError {
  return error instanceof TokenkeeperError && (code === undefined || error.code === code);
}

/** Keys can be 1024 characters long; messages show at most the first 80. */
export function shortKey(key: string): string {
  return key.length > 80 ? `${key.slice(0, 77)}...` : key;
}

/**
 * A copy of a driver's error (ioredis, pg, SQLite, fetch) to keep as a `cause`: its name, code
 * and message only. Drivers attach what failed (ioredis the command's arguments, pg a failing
 * row, fetch the request), which can hold a token; `util.inspect` would print it.
 */
export function redactedCause(error: unknown, message?: string): Error | undefined {
  if (error === undefined || error === null) return undefined;
  const e = error as { name?: unknown; code?: unknown; message?: unknown };
  const copy = new Error(message ?? String(e.message ?? error).slice(0, 300)) as Error & { code?: string };
  if (typeof e.name === 'string') copy.name = e.name;
  if (typeof e.code === 'string') copy.code = e.code;
  return copy;
}
