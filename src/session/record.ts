import { TokenkeeperError } from '../errors.js';
import type { StoreRecord } from '../store/types.js';
import { type StorableTokenSet, TokenSet } from '../token/token-set.js';
import type { DpopRecord } from './dpop-options.js';

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

/**
 * A session as stored: format `session/1`.
 *
 * **Compatibility policy.** Readers of `session/1` accept fields they do not know, so a newer
 * process can add optional fields (0.2 added `renewing`, `issuer`, `clientId`, `endsAt`,
 * `idleTtlMs`, `renewedAt`) without breaking an older one during a rolling deploy; an older
 * writer drops them on its next write, which must never make a record unsafe. A change that an
 * older reader would misread (a field whose meaning changes, a required field) bumps the format
 * to `session/2`: readers refuse formats newer than theirs with `TOKENKEEPER_RECORD_TOO_NEW`,
 * never as corrupt and never by guessing. Every format version has a fixture in
 * `test/fixtures/records/` that every later reader must read.
 */
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
  /**
   * The server (issuer, or token endpoint when there is no issuer) and client that obtained the
   * tokens. A manager of another server or client refuses the record: its tokens are never sent
   * anywhere else. Absent in records written before 0.2 (bound on their next write).
   */
  issuer?: string;
  clientId?: string;
  /** When the session ends whatever happens (ms since the epoch), from `sessionTtlMs`. */
  endsAt?: number;
  /** The idle lifetime (`idleTtlMs`) the session was created with, extended on use. */
  idleTtlMs?: number;
  /** When a renewal last stored new tokens (ms since the epoch). */
  renewedAt?: number;
  /** Which process did it (`host/pid 123` in Node, where the host is known; for operators). Added in 0.2. */
  renewedBy?: string;
  /**
   * The validated claims of the ID token of an OpenID Connect login (`sub`, `iss`, `aud`, ...);
   * the ID token itself is not kept. Added in 0.2: an older reader ignores it.
   */
  claims?: Record<string, unknown>;
  /**
   * The session's DPoP key (RFC 9449), when its tokens are bound to one: its algorithm and
   * thumbprint, and the private key as a JWK in encrypted server stores. Added in 0.2.
   */
  dpop?: DpopRecord;
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
  if (rec.claims !== undefined) out.claims = rec.claims as StoreRecord;
  if (rec.dpop !== undefined) out.dpop = rec.dpop as unknown as StoreRecord;
  for (const f of OPTIONAL) if (rec[f] !== undefined) out[f] = rec[f];
  return out;
}

export function decodeSession(key: string, value: StoreRecord): SessionRecord {
  const format = typeof value.tokenkeeper === 'string' ? /^session\/(\d+)$/.exec(value.tokenkeeper) : null;
  if (format !== null && Number(format[1]) > 1) {
    throw new TokenkeeperError(
      'TOKENKEEPER_RECORD_TOO_NEW',
      `The stored session at ${JSON.stringify(key.slice(0, 120))} is in format ${value.tokenkeeper}, written by a newer tokenkeeper; ` +
        'this version reads session/1. Upgrade tokenkeeper here (the record is left as it is).',
      { key },
    );
  }
  const ok =
    value.tokenkeeper === 'session/1' &&
    typeof value.grant === 'string' &&
    (value.renewBy === 'refresh_token' || value.renewBy === 'client_credentials' || value.renewBy === 'none') &&
    (value.status === 'active' || value.status === 'reauth-required') &&
    typeof value.createdAt === 'number' &&
    typeof value.updatedAt === 'number' &&
    (value.scope === undefined || typeof value.scope === 'string') &&
    (value.reason === undefined || typeof value.reason === 'string') &&
    (value.renewing === undefined || isMark(value.renewing)) &&
    (value.claims === undefined ||
      (typeof value.claims === 'object' && value.claims !== null && !Array.isArray(value.claims))) &&
    OPTIONAL.every((f) => value[f] === undefined || typeof value[f] === (TEXT.has(f) ? 'string' : 'number'));
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
  if (value.claims !== undefined) rec.claims = value.claims as Record<string, unknown>;
  // Checked when the key is used: a bad one is a TOKENKEEPER_DPOP error naming the session.
  if (value.dpop !== undefined) rec.dpop = value.dpop as unknown as DpopRecord;
  for (const f of OPTIONAL) if (value[f] !== undefined) (rec as unknown as Record<string, unknown>)[f] = value[f];
  return rec;
}

/** Optional fields copied as they are (strings or finite numbers, checked on read). */
const OPTIONAL = ['issuer', 'clientId', 'endsAt', 'idleTtlMs', 'renewedAt', 'renewedBy'] as const;
const TEXT: ReadonlySet<string> = new Set(['issuer', 'clientId', 'renewedBy']);

function isMark(value: unknown): boolean {
  const m = value as Partial<RenewalMark> | null;
  return typeof m === 'object' && m !== null && typeof m.by === 'string' && typeof m.at === 'number';
}

/** Where a manager's sessions come from: its server and its client. */
export interface Binding {
  issuer: string;
  clientId: string;
}

/** The record, bound to `binding` (records of 0.1 get their binding on their next write). */
export function bound(rec: SessionRecord, binding: Binding): SessionRecord {
  return rec.issuer === binding.issuer && rec.clientId === binding.clientId
    ? rec
    : { ...rec, issuer: binding.issuer, clientId: binding.clientId };
}

/**
 * Refuses a record obtained from another server or client: its tokens must never be sent
 * anywhere else. Records without a binding (written before 0.2) are accepted.
 * @throws TokenkeeperError `TOKENKEEPER_SESSION_MISMATCH`
 */
export function checkBinding(rec: SessionRecord, binding: Binding, sessionId: string, key: string): void {
  const issuerOk = rec.issuer === undefined || rec.issuer === binding.issuer;
  const clientOk = rec.clientId === undefined || rec.clientId === binding.clientId;
  if (issuerOk && clientOk) return;
  throw new TokenkeeperError(
    'TOKENKEEPER_SESSION_MISMATCH',
    `The stored session ${JSON.stringify(sessionId)} belongs to ${describeBinding(rec.issuer, rec.clientId)}, ` +
      `not to this manager's ${describeBinding(binding.issuer, binding.clientId)}: its tokens are never sent anywhere else. ` +
      'Give each app its own namespace (or fileStore({ app })), or log in with { replace: true } to overwrite it.',
    { key, sessionId },
  );
}

function describeBinding(issuer: string | undefined, clientId: string | undefined): string {
  return `server ${issuer ?? '(unknown)'} and client ${JSON.stringify(clientId ?? '(unknown)')}`;
}

/**
 * The store TTL a write of `rec` gets: what is left of its absolute lifetime (`endsAt`) and its
 * idle lifetime (counted from this write); `undefined` for a session without lifetimes, 0 or
 * less for one that has ended.
 */
export function ttlOf(rec: SessionRecord, now: number = Date.now()): number | undefined {
  const left = [rec.endsAt === undefined ? undefined : rec.endsAt - now, rec.idleTtlMs].filter(
    (v): v is number => v !== undefined,
  );
  return left.length === 0 ? undefined : Math.min(...left);
}

/** True once a session's absolute lifetime has passed. */
export function hasEnded(rec: SessionRecord, now: number = Date.now()): boolean {
  return rec.endsAt !== undefined && rec.endsAt <= now;
}
