import type { LockHolder } from '../errors.js';

/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * What a store keeps under a key: a plain JSON object. Stores know nothing of OAuth; the session
 * layer decides what goes in it.
 */
export type StoreRecord = { [key: string]: JsonValue };

/** A record as read back, with its version. */
export interface StoreEntry {
  value: StoreRecord;
  /**
   * Positive integer, bumped by every successful `set` of the key. Pass it back as
   * `ifVersion` to write only if nobody else wrote in between.
   */
  version: number;
  /** When the record expires (ms since the epoch), if it was written with a TTL. */
  expiresAt?: number;
}

export interface SetOptions {
  /** Expire the record this many milliseconds from now. Reads after that see nothing. */
  ttlMs?: number;
  /**
   * Compare-and-set: write only if the stored version is this one; `0` means "only if the key
   * does not exist". A mismatch throws `TOKENKEEPER_VERSION_CONFLICT` and writes nothing.
   */
  ifVersion?: number;
}

export interface DeleteOptions {
  /** Delete only if the stored version is this one; a mismatch throws `TOKENKEEPER_VERSION_CONFLICT`. */
  ifVersion?: number;
  /**
   * Remove whatever is stored at the key, even a value tokenkeeper did not write (a Redis hash, a
   * hand-edited file), so the key can be used again without a database shell. Cannot be combined
   * with `ifVersion`. Returns true if anything was removed.
   */
  force?: boolean;
}

export interface LockOptions {
  /**
   * How long the lease lasts if it is neither released nor extended (default 30 s). A holder
   * that crashes frees the lock at the latest this long after it took it.
   */
  leaseMs?: number;
  /** How long to wait for a held lock before `TOKENKEEPER_LOCK_TIMEOUT` (default 30 s). */
  waitMs?: number;
  /** Give up waiting when this signal aborts. */
  signal?: AbortSignal;
}

/** A held lock. Release it in a `finally`. */
export interface Lease {
  readonly key: string;
  /** When the lease ends unless extended, in ms since the epoch. */
  readonly expiresAt: number;
  /**
   * Frees the lock if this lease still holds it; a lease that already ended (and may have been
   * taken by someone else) is left alone. Never throws for an ended lease.
   */
  release(): Promise<void>;
  /**
   * Pushes the end of the lease to `leaseMs` from now (default: the length it was taken with,
   * so a holder can call `extend()` as a heartbeat). Returns true only when the store can prove
   * the lock stayed this holder's without a gap in which anyone else could have held it; false
   * once it was released, or ended and may have been taken since (even if that holder has let
   * go again). A holder that gets false no longer holds the lock and must not act under it:
   * the session engine extends before each refresh request and sends nothing on false.
   */
  extend(leaseMs?: number): Promise<boolean>;
  /**
   * How the lock became free for this holder, where the store can tell: `released` (the last
   * holder let go, or the lock was never held), `gone` (the last holder's process is known to
   * have ended: a closed tab, a dead pid on this host) or `expired` (the last holder's lease ran
   * out, and it may still be running). Undefined when the store cannot tell (Redis). The session
   * engine waits longer before resending a marked refresh unless it is `released` or `gone`.
   */
  readonly predecessor?: 'released' | 'gone' | 'expired';
}

/** What a store can promise, so the session layer and users can tell. */
export interface StoreCapabilities {
  /**
   * True when `lock` excludes other processes (and, for a server store, other machines); false
   * when it only excludes callers inside this process.
   */
  crossProcessLock: boolean;
}

/**
 * The contract every store keeps; `tokenkeeper/testing`'s conformance suite is its executable
 * definition, and `tokenkeeper/store-kit` the parts that keep it. Keys are validated by every
 * method (`TOKENKEEPER_INVALID_KEY`) and can never escape the store's namespace, whatever
 * characters they contain.
 *
 * **Versions.** Every `set` returns a positive version, higher than any the key had; `ifVersion`
 * compares with the stored version (`0`: nothing stored, or only an expired record) and a
 * mismatch is `TOKENKEEPER_VERSION_CONFLICT` with nothing written.
 *
 * **Corrupt records.** Something at a key the store cannot read as its record (truncated, edited
 * by hand, another program's value) is never taken for absent and never written over, since it
 * may hold the only copy of a refresh token: `get`, `set` (with or without `ifVersion`) and
 * `delete` with `ifVersion` throw `TOKENKEEPER_CORRUPT_RECORD` naming the key; `keys()` lists it;
 * `delete` without `ifVersion` removes it, and the key works again.
 *
 * **Leases.** See {@link Lease}: `extend()` without an argument renews for the length the lease
 * was taken with, and is false after `release()` or once someone else may have held the lock.
 */
export interface Store {
  /** A short name for messages, such as `file:/home/me/.config/tokenkeeper`. */
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  /** The record and its version, or `undefined` if there is none (or it expired). */
  get(key: string): Promise<StoreEntry | undefined>;
  /** Writes the record atomically and returns its new version. */
  set(key: string, value: StoreRecord, options?: SetOptions): Promise<number>;
  /** Removes the record; true if there was one. */
  delete(key: string, options?: DeleteOptions): Promise<boolean>;
  /**
   * The keys that start with `prefix` (all keys when omitted), streamed in constant memory, in
   * no particular order. Keys written or deleted while listing may or may not appear.
   */
  keys(prefix?: string): AsyncIterable<string>;
  /**
   * Takes the lock named `key` (a namespace of its own: locking never creates a record), waiting
   * up to `waitMs`. The lock is a lease: it frees itself after `leaseMs`.
   */
  lock(key: string, options?: LockOptions): Promise<Lease>;
  /** Frees connections and timers. Later calls throw `TOKENKEEPER_STORE_CLOSED`. */
  close(): Promise<void>;
  /**
   * Optional: calls `listener` when a key was written or deleted by someone else (another tab of
   * this origin, another process), with the key, or `undefined` when any key may have changed;
   * a store may also report its own writes, and a spurious call costs the listener one read.
   * Returns a function that stops listening. The session manager uses it so idle tabs pick up a
   * renewed token or a logout without reading the store on every call, and so a process waiting
   * to renew a session takes up another's renewal at once. Stores that cannot tell leave it out.
   */
  watch?(listener: ChangeListener): () => void;
}

/** See {@link Store.watch}. */
export type ChangeListener = (key: string | undefined) => void;

export type { LockHolder };
