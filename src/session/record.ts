import { TokenkeeperError } from '../errors.js';
import type { StoreRecord } from '../store/types.js';
import { type StorableTokenSet, TokenSet } from '../token/token-set.js';

/**
 * How a session renews itself: `refresh_token` (it holds a refresh token) or
 * `client_credentials` (it asks again with the client's credentials). Anything else
 * needs a new login once its access token expires.
 */
export type RenewBy = 'refresh_token' | 'client_credentials' | 'none';

/**
 * A renewal under way, written into the record before a refresh request is sent. While it is
 * there, the outcome of that request is undecided: the server may have rotated the refresh token.
 */
export interface RenewalMark {
  /** The renewing engine (random per process and manager). */
  by: string;
  /** When the renewal began (ms since the epoch, the holder's clock: for diagnosis only). */
  at: number;
}

/** A session as stored: version 1 of the format. */
export interface SessionRecord {
  tokens: TokenSet;
  /** The grant the session was created with (`client_credentials`, `password`, `adopt`, ...). */
  grant: string;
  renewBy: RenewBy;
  /** The scope asked for at login, asked for again by client-credentials renewals. */
  scope?: string;
  /** `reauth-required` once the server refused to renew it; the tokens stay for diagnosis. */
  status: 'active' | 'reauth-required';
  /** The server's reason, when `status` is `reauth-required` (an OAuth error code, never a token). */
  reason?: string;
  createdAt: number;
  updatedAt: number;
  /** Set while a refresh is in flight, or when its answer was lost: see {@link RenewalMark}. */
  renewing?: RenewalMark;
}

export function encodeSession(rec: SessionRecord): StoreRecord {
  const out: StoreRecord = {
    tokenkeeper: 'session/1',
    tokens: rec.tokens.toStorable() as unknown as StoreRecord,
    grant: rec.grant,
    renewBy: rec.renewBy,
    status: rec.status,
    createdAt: rec.createdAt,
    updatedAt: rec.updatedAt,
  };
  if (rec.scope !== undefined) out.scope = rec.scope;
  if (rec.reason !== undefined) out.reason = rec.reason;
  if (rec.renewing !== undefined) out.renewing = { by: rec.renewing.by, at: rec.renewing.at };
  return out;
}

export function decodeSession(key: string, value: StoreRecord): SessionRecord {
  const ok =
    value.tokenkeeper === 'session/1' &&
    typeof value.grant === 'string' &&
    (value.renewBy === 'refresh_token' || value.renewBy === 'client_credentials' || value.renewBy === 'none') &&
    (value.status === 'active' || value.status === 'reauth-required') &&
    typeof value.createdAt === 'number' &&
    typeof value.updatedAt === 'number' &&
    (value.scope === undefined || typeof value.scope === 'string') &&
    (value.reason === undefined || typeof value.reason === 'string') &&
    (value.renewing === undefined || isMark(value.renewing));
  let tokens: TokenSet | undefined;
  try {
    if (ok) tokens = TokenSet.fromStorable(value.tokens as unknown as StorableTokenSet);
  } catch {}
  if (!ok || tokens === undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_CORRUPT_RECORD',
      `The stored session at ${JSON.stringify(key.slice(0, 120))} is not in the format tokenkeeper writes (written by another program, or edited by hand). ` +
        'Other sessions are unaffected; log this one in again to replace it.',
      { key },
    );
  }
  const rec: SessionRecord = {
    tokens,
    grant: value.grant as string,
    renewBy: value.renewBy as RenewBy,
    status: value.status as SessionRecord['status'],
    createdAt: value.createdAt as number,
    updatedAt: value.updatedAt as number,
  };
  if (value.scope !== undefined) rec.scope = value.scope as string;
  if (value.reason !== undefined) rec.reason = value.reason as string;
  if (value.renewing !== undefined) rec.renewing = value.renewing as unknown as RenewalMark;
  return rec;
}

function isMark(value: unknown): boolean {
  const m = value as Partial<RenewalMark> | null;
  return typeof m === 'object' && m !== null && typeof m.by === 'string' && typeof m.at === 'number';
}
