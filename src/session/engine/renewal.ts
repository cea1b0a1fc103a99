import { isTokenkeeperError, TokenkeeperError } from '../../errors.js';
import { type KeptLease, keepAlive } from '../../store/kit/lease.js';
import { randomToken, sleep } from '../../store/kit/records.js';
import type { Lease, Store, StoreEntry } from '../../store/types.js';
import type { TokenSet } from '../../token/token-set.js';
import type { DpopSigner } from '../dpop-options.js';
import type { Emitter } from '../events.js';
import { type OAuthClient, TokenEndpointError } from '../oauth.js';
import {
  type Binding,
  bound,
  checkBinding,
  decodeSession,
  encodeSession,
  hasEnded,
  type RenewalMark,
  type SessionRecord,
  ttlOf,
} from '../record.js';
import { reauthRequired } from '../session.js';
import type { RenewalTurns } from './turns.js';

/**
 * The renewal engine: renews one session, named by its store key, exactly once however many
 * callers, processes or machines ask. It knows nothing of `Session` objects: it reports every
 * record it reads or writes through {@link RenewalHooks}.
 *
 * ## Why no two holders ever have a refresh request in flight at once
 *
 * 1. A refresh is sent only under the store's lock, after re-reading the record.
 * 2. **The lease is confirmed before every send, and kept alive while the renewal runs.** The
 *    holder extends its lease every third of its length (a heartbeat), and right before each
 *    attempt sends only if the store confirmed it (the take, a heartbeat or an extend;
 *    `Lease.extend` is true only while the lock stayed ours without a gap: see the Store
 *    contract) with at least half a lease still to run, extending it again first if not. So a request is only ever sent before its holder's lease ends, whatever
 *    pause came between the confirmation and the send. A short lease (5 s by default) frees the
 *    lock soon after a holder dies; a live holder's heartbeat keeps it however slow the server.
 * 3. **A renewal whose outcome is unknown is marked.** Before sending, the holder writes a
 *    renewal mark into the record (compare-and-set). A holder that finds another holder's mark
 *    waits (bounded) for that holder's write instead of refreshing: it may be retrying a write
 *    the store refused, or its request may still be in flight (its heartbeat may have failed
 *    while the server was slow). So it sends the same refresh token again only once that request
 *    must have ended: at once when the store says the earlier holder let go of the lock or is
 *    gone (`Lease.predecessor`), else `requestTimeoutMs` plus a margin after it took the lock
 *    (the earlier holder sent before its lease ended, so before then, and aborts its request
 *    after `requestTimeoutMs`); or at once within `rotationGraceMs`, where the server accepts
 *    the token twice. An `invalid_grant` then marks the session `reauth-required` with the reason
 *    `renewal-interrupted`.
 * 4. **Writes are fenced by compare-and-set** on the version read under the lock: a holder whose
 *    lease ran out can never overwrite a newer record.
 * 5. **Rotated tokens are never dropped.** When the write after a successful refresh fails, the
 *    holder keeps the new tokens in memory (its callers are served from them), keeps its lease,
 *    and retries the write with back-off until the store answers or the new access token expires,
 *    emitting an `error` event for each failed attempt.
 *
 * What no client can close: a process killed after the server rotated but before the write.
 * Servers with a reuse grace window recover it (`rotationGraceMs`); others need a new login.
 */

/**
 * How long after one request's timeout a holder that found another holder's renewal mark still
 * waits before sending the same refresh token: half the timeout, at least 250 ms and at most
 * 5 s (so 5 s with the default 10 s timeout).
 */
export function fenceMarginMs(requestTimeoutMs: number): number {
  return Math.min(5_000, Math.max(250, requestTimeoutMs / 2));
}
/** Longest back-off between retries of a refused write of rotated tokens. */
const SAVE_MAX_DELAY_MS = 1_000;
/** Time kept back from the reuse grace window for the resent request to reach the server. */
const GRACE_MARGIN_MS = 1_000;
/** Rounds of re-reading after compare-and-set conflicts under the lock. */
const MAX_ROUNDS = 5;

export interface RenewalOptions {
  store: Store;
  oauth: OAuthClient;
  events: Emitter;
  lock: { leaseMs: number; waitMs: number };
  refreshSkewMs: number;
  /** The time limit of one token request (the retry policy's `timeoutMs`). */
  requestTimeoutMs: number;
  /**
   * How long a holder that finds another holder's renewal mark waits for that holder's write
   * before it takes the renewal over (default 3 s: a live holder retries its write at least
   * once a second).
   */
  undecidedWaitMs: number;
  /**
   * The server's refresh-token reuse grace window (0: none). Within it, a refresh whose answer
   * was lost is sent again at once with the same refresh token.
   */
  rotationGraceMs: number;
  /** The server and client this engine's sessions belong to. */
  binding: Binding;
  /** The DPoP signer of a record read under the lock (`undefined` for bearer sessions). */
  dpop(key: string, sessionId: string, record: SessionRecord): Promise<DpopSigner | undefined>;
  /** Renewals of this engine talking to the token endpoint at once; more wait their turn (see {@link RenewalTurns}). */
  maxConcurrentRenewals: number;
}

/** How the engine tells its owner what it read and wrote. */
export interface RenewalHooks {
  /** A record of `sessionId` was read or written: bring the session object up to date. */
  apply(sessionId: string, record: SessionRecord): void;
  /** The record is gone (logged out). */
  forget(sessionId: string): void;
}

interface PendingSave {
  tokens: TokenSet;
  done: Promise<void>;
}

/** What a renewal reports with its `refresh` event. */
interface Timing {
  lockWaitMs: number;
  serverMs?: number;
}

interface Outcome {
  tokens: TokenSet;
  /** A write of rotated tokens the store refused, still being retried under the lease. */
  pending?: PendingSave;
}

export class RenewalEngine {
  readonly #o: RenewalOptions;
  readonly #hooks: RenewalHooks;
  readonly #inflight = new Map<string, Promise<TokenSet>>();
  readonly #pending = new Map<string, PendingSave>();
  /** Identifies this engine's renewal marks. */
  readonly #holder = randomToken();
  /** Who renews, as the record tells operators (`tokenkeeper sessions show`). */
  readonly #label = processLabel();
  /** Loaded with the first renewal: a page that never renews (or rarely) ships none of it. */
  #turns: Promise<RenewalTurns> | undefined;

  constructor(options: RenewalOptions, hooks: RenewalHooks) {
    this.#o = options;
    this.#hooks = hooks;
  }

  async #turn(deadline: number, sessionId: string, key: string): Promise<() => void> {
    this.#turns ??= import('./turns.js').then((m) => new m.RenewalTurns(this.#o.maxConcurrentRenewals));
    return (await this.#turns).take(deadline, sessionId, key);
  }

  /** True while a renewal of `key` runs here, or its rotated tokens wait to be written. */
  busy(key: string): boolean {
    return this.#inflight.has(key) || this.#pending.has(key);
  }

  /**
   * A valid access token for the session at `key`: one renewal per key at a time in this process,
   * under the store's lock across processes. `stale` is the token the caller found unusable.
   * Resolves only with a token valid now, or throws.
   */
  renew(sessionId: string, key: string, stale: TokenSet | undefined, force: boolean): Promise<TokenSet> {
    let flight = this.#inflight.get(key);
    if (flight === undefined) {
      flight = this.#untilDeadline(sessionId, key, stale, force)
        .catch((error: unknown) => {
          throw aboutSession(error, sessionId, key);
        })
        .finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, flight);
    }
    return flight;
  }

  /**
   * Renews within the call's deadline (`lock.waitMs` from now). A try that stopped before
   * sending anything because another holder has the renewal (our lease ran out under us on a
   * busy machine, or its write landed first) is not the caller's problem: the next try waits for
   * that holder the way every waiter does (the lock, its wake-ups, the record's news) and hands
   * out its token. Only the deadline ends in an error.
   */
  async #untilDeadline(sessionId: string, key: string, stale: TokenSet | undefined, force: boolean): Promise<TokenSet> {
    const deadline = Date.now() + this.#o.lock.waitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#locked(sessionId, key, stale, force, deadline);
      } catch (error) {
        // Its lease could not be confirmed (#confirm runs before every send): nothing was sent.
        // (A conflict after a refresh is never retried: its refresh token is spent.)
        if (!isTokenkeeperError(error, 'TOKENKEEPER_LEASE_LOST') || Date.now() >= deadline) throw error;
      }
      // A short pause, so a store that keeps refusing the lease is not asked in a tight loop.
      await sleep(Math.min(Math.max(0, deadline - Date.now()), 5 * 2 ** Math.min(attempt, 6)));
    }
  }

  async #locked(
    sessionId: string,
    key: string,
    stale: TokenSet | undefined,
    force: boolean,
    deadline: number,
  ): Promise<TokenSet> {
    const pending = this.#pending.get(key);
    if (pending !== undefined) {
      // Our own rotated tokens, not yet in the store: they are the newest there are, and no new
      // refresh may start before they are stored. Wait for that, but never longer than a lock wait.
      if (!force && !pending.tokens.isExpired()) return pending.tokens;
      const done = new AbortController(); // so the wait's timer never outlives the save
      const stored = await Promise.race([
        pending.done.then(() => true),
        sleep(Math.max(0, deadline - Date.now()), done.signal).then(
          () => false,
          () => true,
        ),
      ]).finally(() => done.abort());
      if (!stored) {
        throw new TokenkeeperError(
          'TOKENKEEPER_STORE_UNAVAILABLE',
          `The last tokens of the session ${JSON.stringify(sessionId)} are not stored yet: try again when the store is back.`,
          { key, sessionId },
        );
      }
    }
    const { store, lock } = this.#o;
    const waitStarted = Date.now();
    // This process's turn first (see RenewalTurns), then one try for the lock: a lease is only
    // taken when a renewal can go ahead, so a burst keeps few leases (and heartbeats) alive.
    let turn: (() => void) | undefined = await this.#turn(deadline, sessionId, key);
    try {
      let got: Lease | TokenSet;
      try {
        got = await store.lock(key, { ...lock, waitMs: 0 });
      } catch (error) {
        if (!isTokenkeeperError(error, 'TOKENKEEPER_LOCK_TIMEOUT')) throw error;
        // Another holder renews it: wait for its result without a turn, so this process's other
        // sessions go ahead meanwhile (a fleet then renews different sessions side by side).
        turn();
        turn = undefined;
        got = await this.#lockOrAdopt(sessionId, key, stale, force, deadline);
      }
      if (!('release' in got)) return got; // renewed elsewhere while we waited: no lock needed
      const lease = keepAlive(got, Math.max(20, lock.leaseMs / 3));
      const acquiredAt = Date.now();
      const timing: Timing = { lockWaitMs: acquiredAt - waitStarted };
      let handedOver = false;
      try {
        const outcome = await this.#renewLocked(
          sessionId,
          key,
          stale,
          force,
          lease,
          timing,
          acquiredAt,
          deadline,
          turn,
        );
        if (outcome.pending !== undefined) handedOver = true; // the saver releases the lease
        return outcome.tokens;
      } finally {
        if (!handedOver) await this.#release(lease, sessionId);
      }
    } finally {
      turn?.();
    }
  }

  /**
   * The store's lock on `key`; or, on a store that announces writes (`watch`), the token another
   * process renewed while this one waited, as soon as it is announced: a fleet waiting on one
   * renewal then takes up its result at once instead of queueing for the lock one by one. News
   * stops the lock wait before the store can act on the same announcement, so reading it never
   * races a lock taken for nothing.
   */
  async #lockOrAdopt(
    sessionId: string,
    key: string,
    stale: TokenSet | undefined,
    force: boolean,
    deadline: number,
  ): Promise<Lease | TokenSet> {
    const { store, lock } = this.#o;
    const watch = store.watch?.bind(store);
    if (watch === undefined || (force && stale === undefined))
      return store.lock(key, { ...lock, waitMs: Math.max(0, deadline - Date.now()) });
    for (;;) {
      const news = new AbortController();
      const stop = watch((changed) => {
        if (changed === undefined || changed === key) news.abort();
      });
      try {
        return await store.lock(key, { ...lock, waitMs: Math.max(0, deadline - Date.now()), signal: news.signal });
      } catch (error) {
        if (!news.signal.aborted) throw error;
      } finally {
        stop();
      }
      const renewed = await this.#renewedElsewhere(sessionId, key, stale);
      if (renewed !== undefined) return renewed;
      // Not usable yet (the announcement was the renewal mark, say): wait again. News missed
      // between the two waits only means taking the lock and reading the record under it.
    }
  }

  /** The stored token, if another holder renewed the session and it is usable now. */
  async #renewedElsewhere(sessionId: string, key: string, stale: TokenSet | undefined): Promise<TokenSet | undefined> {
    const entry = await this.#o.store.get(key).catch(() => undefined);
    if (entry === undefined) return undefined;
    let rec: SessionRecord;
    try {
      rec = decodeSession(key, entry.value);
      checkBinding(rec, this.#o.binding, sessionId, key);
    } catch {
      return undefined; // the lock holder's read reports it
    }
    if (rec.status !== 'active' || rec.renewing !== undefined || hasEnded(rec)) return undefined;
    if (rec.tokens.needsRenewal(this.#o.refreshSkewMs)) return undefined;
    if (stale !== undefined && rec.tokens.accessToken === stale.accessToken) return undefined;
    this.#hooks.apply(sessionId, rec);
    return rec.tokens;
  }

  async #renewLocked(
    sessionId: string,
    key: string,
    stale: TokenSet | undefined,
    force: boolean,
    lease: KeptLease,
    timing: Timing,
    acquiredAt: number,
    deadline: number,
    turn: (() => void) | undefined,
  ): Promise<Outcome> {
    for (let round = 1; ; round++) {
      const read = await this.#read(sessionId, key);
      const { entry, rec } = read;
      if (rec.status === 'reauth-required') throw reauthRequired(sessionId, key, rec.reason);
      // Another process (or an earlier flight) may have renewed already: adopt its token.
      const renewedElsewhere = stale === undefined || rec.tokens.accessToken !== stale.accessToken;
      if (
        rec.renewing === undefined &&
        !rec.tokens.needsRenewal(this.#o.refreshSkewMs) &&
        (renewedElsewhere || !force)
      ) {
        return { tokens: rec.tokens };
      }
      let interrupted = false;
      if (rec.renewing !== undefined) {
        if (
          rec.renewing.by !== this.#holder &&
          (await this.#awaitChange(key, entry.version, acquiredAt, lease, rec.renewing.at))
        ) {
          continue; // the other holder's write landed: read it
        }
        interrupted = true;
      }
      if (rec.renewBy !== 'client_credentials' && (rec.renewBy !== 'refresh_token' || !rec.tokens.refreshToken)) {
        throw reauthRequired(sessionId, key, 'no refresh token: the access token expired');
      }
      // A request will be sent: it needs a turn. One that waited for another holder has none; it
      // waits for one holding the lock (the heartbeat keeps it), as whoever holds a turn never
      // waits for a lock.
      const giveBack = turn ?? (await this.#turn(deadline, sessionId, key));
      try {
        if (rec.renewBy === 'client_credentials')
          return await this.#renewByClientCredentials(sessionId, key, entry, rec, timing);
        await this.#confirm(lease, key, sessionId);
        let marked: number;
        const mark: RenewalMark = { by: this.#holder, at: Date.now() };
        try {
          marked = await this.#write(key, { ...rec, renewing: mark }, entry.version);
        } catch (error) {
          if (isTokenkeeperError(error, 'TOKENKEEPER_VERSION_CONFLICT') && round < MAX_ROUNDS) continue;
          throw error; // nothing was sent
        }
        return await this.#refresh(sessionId, key, { ...rec, renewing: mark }, marked, interrupted, lease, timing);
      } finally {
        giveBack();
      }
    }
  }

  async #refresh(
    sessionId: string,
    key: string,
    rec: SessionRecord,
    version: number,
    interrupted: boolean,
    lease: KeptLease,
    timing: Timing,
  ): Promise<Outcome> {
    const { oauth, events } = this.#o;
    const refreshToken = rec.tokens.refreshToken as string;
    const firstSentAt = Date.now();
    let tokens: TokenSet;
    for (;;) {
      try {
        // The key is read with the record, under the lock: every process signs with the session's one key.
        const dpop = await this.#o.dpop(key, sessionId, rec);
        tokens = await oauth.refresh(refreshToken, undefined, () => this.#confirm(lease, key, sessionId), dpop);
        timing.serverMs = Date.now() - firstSentAt;
        break;
      } catch (error) {
        if (isTokenkeeperError(error, 'TOKENKEEPER_INVALID_GRANT')) {
          // A refusal without an OAuth error code (a bare 400 or 401) is a refusal all the same.
          const reason = interrupted
            ? 'renewal-interrupted'
            : ((error as TokenEndpointError).oauthError ?? 'refresh-refused');
          throw await this.#markReauth(sessionId, key, rec, version, reason, error);
        }
        const unknown = error instanceof TokenEndpointError && error.outcomeUnknown;
        if (unknown && Date.now() - firstSentAt < this.#o.rotationGraceMs) {
          // The server may have rotated; within its grace window the same token is accepted again.
          interrupted = true;
          continue;
        }
        // Unknown outcome: leave the mark, so the next holder knows the token may be spent. A
        // refusal or a request never sent: the record is as it was, so take the mark away.
        if (!unknown) await this.#writeOrReport(sessionId, key, settled(rec, {}), version);
        throw error;
      }
    }
    if (tokens.refreshToken === undefined) tokens = tokens.with({ refreshToken }); // the server did not rotate it
    const now = Date.now();
    const next = settled(rec, { tokens, updatedAt: now, renewedAt: now, renewedBy: this.#label });
    try {
      await this.#write(key, next, version);
    } catch (error) {
      if (isTokenkeeperError(error, 'TOKENKEEPER_VERSION_CONFLICT'))
        return { tokens: await this.#theirs(sessionId, key, error) };
      // The server rotated: these tokens exist nowhere else. Keep them and keep trying.
      events.emit('error', { sessionId, error });
      this.#hooks.apply(sessionId, next);
      const pending = this.#save(sessionId, key, next, version, lease, timing);
      return { tokens, pending };
    }
    this.#hooks.apply(sessionId, next);
    events.emit('refresh', { sessionId, grant: rec.grant, expiresAt: tokens.expiresAt, ...timing });
    return { tokens };
  }

  async #renewByClientCredentials(
    sessionId: string,
    key: string,
    entry: StoreEntry,
    rec: SessionRecord,
    timing: Timing,
  ): Promise<Outcome> {
    const sentAt = Date.now();
    const { tokens } = await this.#o.oauth.clientCredentials(rec.scope, await this.#o.dpop(key, sessionId, rec));
    timing.serverMs = Date.now() - sentAt;
    const now = Date.now();
    const next = settled(rec, { tokens, updatedAt: now, renewedAt: now, renewedBy: this.#label });
    try {
      await this.#write(key, next, entry.version);
    } catch (error) {
      if (isTokenkeeperError(error, 'TOKENKEEPER_VERSION_CONFLICT'))
        return { tokens: await this.#theirs(sessionId, key, error) };
      // Nothing rotates here: the next renewal simply asks again. Serve these meanwhile.
      this.#o.events.emit('error', { sessionId, error });
    }
    this.#hooks.apply(sessionId, next);
    this.#o.events.emit('refresh', { sessionId, grant: rec.grant, expiresAt: tokens.expiresAt, ...timing });
    return { tokens };
  }

  /**
   * Someone wrote the record after we read it (our lease ran out during a slow renewal). Their
   * record wins, but it is handed out only if it is active and valid now; otherwise its state is
   * reported: never an expired token as a success.
   */
  async #theirs(sessionId: string, key: string, conflict: unknown): Promise<TokenSet> {
    this.#o.events.emit('error', { sessionId, error: conflict });
    const { rec } = await this.#read(sessionId, key);
    if (rec.status === 'reauth-required') throw reauthRequired(sessionId, key, rec.reason);
    if (rec.renewing === undefined && !rec.tokens.isExpired()) return rec.tokens;
    throw new TokenkeeperError(
      'TOKENKEEPER_VERSION_CONFLICT',
      `The session ${JSON.stringify(sessionId)} was renewed concurrently by another holder; its token is not usable yet. Try again.`,
      { key, sessionId, cause: conflict },
    );
  }

  /** Retries the write of rotated tokens under the lease until it lands or the token expires. */
  #save(
    sessionId: string,
    key: string,
    next: SessionRecord,
    version: number,
    lease: Lease,
    timing: Timing,
  ): PendingSave {
    const { events } = this.#o;
    const deadline = next.tokens.expiresAt ?? Date.now() + 3_600_000;
    const done = (async () => {
      let delay = 100;
      try {
        while (Date.now() < deadline) {
          await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
          delay = Math.min(delay * 2, SAVE_MAX_DELAY_MS);
          try {
            await this.#write(key, next, version);
            events.emit('refresh', { sessionId, grant: next.grant, expiresAt: next.tokens.expiresAt, ...timing });
            return;
          } catch (error) {
            events.emit('error', { sessionId, error });
            if (isTokenkeeperError(error, 'TOKENKEEPER_VERSION_CONFLICT')) return; // someone else decided
            if (isTokenkeeperError(error, 'TOKENKEEPER_STORE_CLOSED')) return; // the app is shutting down
          }
        }
      } finally {
        this.#pending.delete(key);
        await this.#release(lease, sessionId);
      }
    })();
    const pending: PendingSave = { tokens: next.tokens, done };
    this.#pending.set(key, pending);
    return pending;
  }

  /**
   * The fence: the lease must be confirmed by the store, with at least half a lease to run,
   * before anything is sent. Throws (sending nothing) otherwise. The store's last confirmation
   * (the take, a heartbeat, an extend: `expiresAt` counts from before each request was sent)
   * serves while it still leaves half a lease: asking again would prove nothing more, and a
   * burst of renewals would pay a store round trip twice per refresh for it.
   */
  async #confirm(lease: KeptLease, key: string, sessionId: string): Promise<void> {
    const { leaseMs } = this.#o.lock;
    if (!lease.lost && lease.expiresAt - Date.now() >= leaseMs / 2) return;
    const extended = await lease.extend(leaseMs);
    if (extended && lease.expiresAt - Date.now() >= leaseMs / 2) return;
    // Callers rarely see this: the renewal tries again within their deadline (#untilDeadline).
    throw new TokenkeeperError(
      'TOKENKEEPER_LEASE_LOST',
      `The lock on the session ${JSON.stringify(sessionId)} was lost; nothing was sent. Raise lock.leaseMs.`,
      { key, sessionId },
    );
  }

  /**
   * Waits, bounded, for the holder of another renewal mark to write the record. True if the
   * record changed (read it again), false if it did not (its renewal was interrupted). Without
   * a grace window the wait lasts until that holder's request, if one is still in flight, must
   * have ended (see the class comment, point 3).
   */
  async #awaitChange(
    key: string,
    version: number,
    acquiredAt: number,
    lease: Lease,
    markedAt: number,
  ): Promise<boolean> {
    const { undecidedWaitMs, rotationGraceMs, requestTimeoutMs } = this.#o;
    // Within the server's reuse grace window (counted from the mark, written just before its
    // request, with a second to spare for ours) the same refresh token is accepted again: take
    // the renewal over at once. We hold the lock, so the marked holder's lease ended (it died, or
    // stalled past its lease); alive, its late write loses the compare-and-set to ours.
    if (rotationGraceMs > 0 && Date.now() - markedAt < rotationGraceMs - GRACE_MARGIN_MS) return false;
    // Its holder let go of the lock, or is known to be gone: no request of its can be in flight.
    const ended = lease.predecessor === 'released' || lease.predecessor === 'gone';
    const inFlightUntil =
      rotationGraceMs > 0 || ended ? 0 : acquiredAt + requestTimeoutMs + fenceMarginMs(requestTimeoutMs);
    const deadline = Math.max(Date.now() + undecidedWaitMs, inFlightUntil);
    let delay = 50;
    while (Date.now() < deadline) {
      await sleep(Math.min(delay, deadline - Date.now()));
      delay = Math.min(delay * 2, 500);
      const entry = await this.#o.store.get(key).catch(() => undefined);
      if (entry === undefined || entry.version !== version) return true;
    }
    return false;
  }

  async #read(sessionId: string, key: string): Promise<{ entry: StoreEntry; rec: SessionRecord }> {
    const entry = await this.#o.store.get(key);
    if (entry === undefined) {
      this.#hooks.forget(sessionId);
      throw noSession(sessionId, key);
    }
    if (!Number.isSafeInteger(entry.version) || entry.version < 1) {
      throw new TokenkeeperError(
        'TOKENKEEPER_CORRUPT_RECORD',
        `The store returned version ${String(entry.version).slice(0, 20)} for the session ${JSON.stringify(sessionId)}, not a positive integer. ` +
          'Nothing was sent: is it a tokenkeeper store?',
        { key, sessionId },
      );
    }
    const rec = decodeSession(key, entry.value);
    checkBinding(rec, this.#o.binding, sessionId, key);
    if (hasEnded(rec)) throw noSession(sessionId, key, 'its lifetime (sessionTtlMs) ended');
    this.#hooks.apply(sessionId, rec);
    return { entry, rec };
  }

  /**
   * Writes `rec` over `version`, bound to this engine's server and client, with what is left of
   * its lifetimes as the store TTL (an idle lifetime starts again with every write).
   */
  #write(key: string, rec: SessionRecord, version: number): Promise<number> {
    const ttlMs = ttlOf(rec);
    if (ttlMs !== undefined && ttlMs <= 0)
      return Promise.reject(noSession(undefined, key, 'its lifetime (sessionTtlMs) ended'));
    return this.#o.store.set(key, encodeSession(bound(rec, this.#o.binding)), {
      ifVersion: version,
      ...(ttlMs === undefined ? {} : { ttlMs }),
    });
  }

  /** Extends an idle lifetime: rewrites the record as it is, with a fresh TTL. Quietly skips on a conflict. */
  async touch(sessionId: string, key: string): Promise<void> {
    const entry = await this.#o.store.get(key);
    if (entry === undefined) return;
    const rec = decodeSession(key, entry.value);
    checkBinding(rec, this.#o.binding, sessionId, key);
    if (rec.idleTtlMs === undefined || hasEnded(rec)) return;
    await this.#write(key, rec, entry.version).catch((error: unknown) => {
      if (!isTokenkeeperError(error, 'TOKENKEEPER_VERSION_CONFLICT')) throw error;
    });
  }

  /**
   * Writes `rec` over `version` and applies it; a failed write is reported, not thrown (the
   * caller's own error, or its reauth verdict, is what its callers need).
   */
  async #writeOrReport(sessionId: string, key: string, rec: SessionRecord, version: number): Promise<void> {
    try {
      await this.#write(key, rec, version);
      this.#hooks.apply(sessionId, rec);
    } catch (error) {
      this.#o.events.emit('error', { sessionId, error });
    }
  }

  /** Marks the session `reauth-required` (keeping its record for diagnosis) and emits. */
  async #markReauth(
    sessionId: string,
    key: string,
    rec: SessionRecord,
    version: number,
    reason: string | undefined,
    cause: unknown,
  ): Promise<TokenkeeperError> {
    const marked = settled(rec, { status: 'reauth-required', reason: reason ?? 'expired', updatedAt: Date.now() });
    await this.#writeOrReport(sessionId, key, marked, version);
    const error = reauthRequired(sessionId, key, reason, cause);
    this.#o.events.emit('reauth-required', { sessionId, error });
    return error;
  }

  async #release(lease: Lease, sessionId: string): Promise<void> {
    // A failed release never masks the renewal's result: the lease ends by itself.
    await lease.release().catch((error: unknown) => this.#o.events.emit('error', { sessionId, error }));
  }
}

/** `TOKENKEEPER_NO_SESSION` for `sessionId`. */
export function noSession(
  sessionId: string | undefined,
  key: string,
  why = 'it was logged out, cleared, or its lifetime ended',
): TokenkeeperError {
  return new TokenkeeperError(
    'TOKENKEEPER_NO_SESSION',
    `There is no stored session ${JSON.stringify(sessionId ?? key)} (${why}). Log in again.`,
    sessionId === undefined ? { key } : { key, sessionId },
  );
}

/**
 * `error` naming the session: a store's error (a lock timeout, a corrupt record) knows the key at
 * most, and a caller of `getAccessToken()` needs both.
 */
export function aboutSession(error: unknown, sessionId: string, key: string): unknown {
  if (error instanceof TokenkeeperError) {
    const e = error as { key: string | undefined; sessionId: string | undefined };
    e.key ??= key;
    e.sessionId ??= sessionId;
  }
  return error;
}

/** `rec` with `changes`, and without a renewal mark: the renewal it stood for is decided. */
function settled(rec: SessionRecord, changes: Partial<SessionRecord>): SessionRecord {
  const out: SessionRecord = { ...rec, ...changes };
  delete out.renewing;
  return out;
}

/**
 * This process as an operator knows it: `host/pid 123`. The host comes from `node:os` where the
 * runtime offers its built-in modules without an import (`process.getBuiltinModule`, Node 20.16
 * and later), else from `HOSTNAME`; a browser bundle imports nothing for it.
 */
function processLabel(): string {
  const p = (
    globalThis as {
      process?: {
        pid?: number;
        env?: Record<string, string | undefined>;
        getBuiltinModule?: (id: string) => { hostname?: () => string } | undefined;
      };
    }
  ).process;
  if (p?.pid === undefined) return 'a browser tab';
  let host = p.env?.HOSTNAME;
  try {
    host = p.getBuiltinModule?.('os')?.hostname?.() || host;
  } catch {
    // No host name to be had: the pid alone.
  }
  return `${host ? `${host}/` : ''}pid ${p.pid}`;
}
