/**
 * Every error tokenkeeper throws is a {@link TokenkeeperError} with a stable `code` a caller can
 * switch on. Messages say what happened and what to do next; they never contain a token, a
 * client secret or a record's contents.
 */
export type ErrorCode =
  | 'TOKENKEEPER_INVALID_ARGUMENT'
  | 'TOKENKEEPER_INVALID_KEY'
  | 'TOKENKEEPER_INVALID_RECORD'
  | 'TOKENKEEPER_INVALID_TOKEN_RESPONSE'
  | 'TOKENKEEPER_VERSION_CONFLICT'
  | 'TOKENKEEPER_LOCK_TIMEOUT'
  | 'TOKENKEEPER_CORRUPT_RECORD'
  | 'TOKENKEEPER_DECRYPT_FAILED'
  | 'TOKENKEEPER_STORE_UNAVAILABLE'
  | 'TOKENKEEPER_STORE_FULL'
  | 'TOKENKEEPER_INSECURE_PERMISSIONS'
  | 'TOKENKEEPER_STORE_CLOSED'
  | 'TOKENKEEPER_INSECURE_ENDPOINT'
  | 'TOKENKEEPER_INVALID_GRANT'
  | 'TOKENKEEPER_REAUTH_REQUIRED'
  | 'TOKENKEEPER_TOKEN_ENDPOINT'
  | 'TOKENKEEPER_DISCOVERY_FAILED'
  | 'TOKENKEEPER_NO_SESSION'
  | 'TOKENKEEPER_LEASE_LOST'
  | 'TOKENKEEPER_SESSION_MISMATCH'
  | 'TOKENKEEPER_INVALID_CLIENT'
  | 'TOKENKEEPER_INVALID_SCOPE'
  | 'TOKENKEEPER_INVALID_REQUEST'
  | 'TOKENKEEPER_ACCESS_DENIED'
  | 'TOKENKEEPER_AUTHORIZATION_PENDING'
  | 'TOKENKEEPER_DPOP'
  | 'TOKENKEEPER_RECORD_TOO_NEW';

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
