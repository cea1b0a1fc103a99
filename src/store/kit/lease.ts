import type { Lease } from '../types.js';
import { lockOptions } from './records.js';

/** What a store does to keep or free one held lock; {@link createLease} wraps it in a {@link Lease}. */
export interface LeaseBackend {
  /**
   * Frees the lock if this holder still holds it (compare its token first); leaves a lock that
   * someone else took alone. Called at most once.
   */
  release(): Promise<void>;
  /**
   * Pushes the end of the lock to `leaseMs` from now, only while this holder still holds it
   * without a gap (the backend still carries its token and the lease never ran out in between).
   * Returns whether it did.
   */
  renew(leaseMs: number): Promise<boolean>;
}

/**
 * The {@link Lease} every built-in store hands out, with one meaning everywhere:
 * - `expiresAt` counts from before the request that took or renewed the lock was sent, so the end
 *   the holder believes in is never later than the end the backend enforces;
 * - `extend()` without an argument renews for the length the lease was taken with;
 * - `extend()` after `release()` is false without asking the backend; `release()` runs once;
 * - `predecessor` says how the lock became free, if the store knows (see `Lease.predecessor`).
 *
 * @param takenAt when the request that took the lock was sent (`Date.now()` before sending)
 */
export function createLease(
  key: string,
  leaseMs: number,
  takenAt: number,
  backend: LeaseBackend,
  predecessor?: Lease['predecessor'],
): Lease {
  let expiresAt = takenAt + leaseMs;
  let released: Promise<void> | undefined;
  return {
    key,
    predecessor,
    get expiresAt() {
      return expiresAt;
    },
    release() {
      released ??= backend.release();
      return released;
    },
    async extend(ms?: number) {
      const length = lockOptions({ leaseMs: ms ?? leaseMs }).leaseMs;
      if (released !== undefined) return false;
      const sentAt = Date.now();
      if (!(await backend.renew(length))) return false;
      expiresAt = sentAt + length;
      return true;
    },
  };
}

/** A lease kept alive by {@link keepAlive}. */
export interface KeptLease extends Lease {
  /** True once an extend was refused: the lock may be someone else's now. */
  readonly lost: boolean;
}

/**
 * Keeps `lease` alive: extends it every `everyMs` (a heartbeat) until it is released, so a short
 * lease can cover work of any length while its holder lives, and ends soon after the holder
 * dies. A refused extend stops the heartbeat and sets `lost`; a failed one (the store did not
 * answer) is tried again at the next beat. The timer never keeps the process alive.
 */
export function keepAlive(lease: Lease, everyMs: number): KeptLease {
  let lost = false;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const beat = async () => {
    timer = undefined;
    if (stopped) return;
    const ok = await lease.extend().catch(() => undefined);
    if (ok === false) lost = true;
    else schedule();
  };
  const schedule = () => {
    if (stopped || lost) return;
    timer = setTimeout(beat, everyMs);
    (timer as { unref?: () => void }).unref?.();
  };
  schedule();
  return {
    key: lease.key,
    predecessor: lease.predecessor,
    get expiresAt() {
      return lease.expiresAt;
    },
    get lost() {
      return lost;
    },
    async extend(ms?: number) {
      const ok = await lease.extend(ms);
      if (!ok) lost = true;
      return ok;
    },
    release() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      return lease.release();
    },
  };
}
