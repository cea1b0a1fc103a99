import { LockTimeoutError } from '../../errors.js';
import type { Lease, LockOptions } from '../types.js';
import { assertValidKey } from './keys.js';
import { createLease } from './lease.js';
import { ReleaseWakeups, WakeableSleep } from './poll-lock.js';
import { lockOptions, randomToken } from './records.js';

interface Held {
  token: string;
  expiresAt: number;
}

/**
 * Leases that exclude callers inside this JavaScript realm only: the lock of the memory store,
 * and of stores whose backend offers no lock. Waiters wake on release or when the lease runs out,
 * never by polling.
 */
export class LocalLocks {
  readonly #held = new Map<string, Held>();
  readonly #releases = new ReleaseWakeups();

  async acquire(key: string, options?: LockOptions): Promise<Lease> {
    assertValidKey(key);
    const { leaseMs, waitMs, signal } = lockOptions(options);
    const deadline = Date.now() + waitMs;
    for (;;) {
      signal?.throwIfAborted();
      const now = Date.now();
      const held = this.#held.get(key);
      if (held === undefined || held.expiresAt <= now) {
        const mine: Held = { token: randomToken(), expiresAt: now + leaseMs };
        this.#held.set(key, mine);
        return this.#lease(key, mine, leaseMs, held === undefined ? 'released' : 'expired');
      }
      if (now >= deadline) {
        throw new LockTimeoutError(key, waitMs, {
          pid: (globalThis as { process?: { pid?: number } }).process?.pid,
          expiresAt: held.expiresAt,
        });
      }
      const alarm = new WakeableSleep(this.#releases.wakeFor(key));
      try {
        await alarm.sleep(Math.max(1, Math.min(held.expiresAt, deadline) - now), signal);
      } finally {
        alarm.stop();
      }
    }
  }

  #lease(key: string, held: Held, length: number, predecessor: Lease['predecessor']): Lease {
    return createLease(
      key,
      length,
      held.expiresAt - length,
      {
        release: async () => {
          if (this.#held.get(key) === held) {
            this.#held.delete(key);
            this.#releases.wake(key);
          }
        },
        // An ended lease that nobody took yet is still ours; one that was released or taken is not.
        renew: async (leaseMs) => {
          if (this.#held.get(key) !== held) return false;
          held.expiresAt = Date.now() + leaseMs;
          return true;
        },
      },
      predecessor,
    );
  }
}
