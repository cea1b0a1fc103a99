import { type LockHolder, LockTimeoutError } from '../../errors.js';
import type { LockOptions } from '../types.js';
import { lockOptions } from './records.js';

const MAX_POLL_MS = 25;
/** With wake-ups, polling is only the safety net for a lost message: it can back off further... */
const MAX_POLL_WITH_WAKE_MS = 200;
/** ...once the announcements can be trusted to arrive (a subscriber connects on first need). */
const WAKE_WARMUP_MS = 1_000;

/**
 * Subscribes to "the lock may be free now" (a release announced by the backend: Redis pub/sub,
 * PostgreSQL `NOTIFY`). Calls `notify` on each; returns a function that unsubscribes. `live`,
 * where the store can tell, says whether announcements arrive now (its listener is connected):
 * then waiters need not poll fast.
 */
export type LockWake = ((notify: () => void) => () => void) & { live?: () => boolean };

/**
 * The waiting part of a lease lock whose backend can only "try": tries at once, then backs off
 * (1 ms doubling to 25 ms, with jitter) until `waitMs`, then throws `TOKENKEEPER_LOCK_TIMEOUT`
 * with whatever the backend says about the holder. With `wake`, a waiter tries again as soon
 * as the backend announces a release, and after its first second of waiting (time for a
 * subscriber to connect) polls only every 200 ms, in case an announcement is lost.
 */
export async function pollLock<T>(
  key: string,
  options: LockOptions | undefined,
  tryAcquire: (leaseMs: number) => Promise<T | undefined>,
  holder: () => Promise<LockHolder | undefined> = async () => undefined,
  wake?: LockWake,
): Promise<T> {
  const { leaseMs, waitMs, signal } = lockOptions(options);
  const deadline = Date.now() + waitMs;
  const started = Date.now();
  // Announcements are trusted once the store says its listener is connected (or, for a store
  // that cannot tell, after a warm-up): a fleet's waiters then poll at most every 200 ms, so a
  // thousand of them do not flood the backend, which also carries the holders' work.
  const trusted = () => wake !== undefined && (wake.live?.() ?? Date.now() - started > WAKE_WARMUP_MS);
  const maxPoll = () => (trusted() ? MAX_POLL_WITH_WAKE_MS : MAX_POLL_MS);
  let poll = 1;
  const alarm = new WakeableSleep(wake);
  try {
    for (;;) {
      signal?.throwIfAborted();
      alarm.woken = false;
      const got = await tryAcquire(leaseMs);
      if (got !== undefined) return got;
      const now = Date.now();
      if (now >= deadline) throw new LockTimeoutError(key, waitMs, await holder().catch(() => undefined));
      if (alarm.woken) continue; // released while we were trying: try again at once
      if (trusted()) poll = Math.max(poll, MAX_POLL_MS); // the announcement wakes us sooner
      await alarm.sleep(Math.max(1, Math.min(poll + Math.random() * poll, deadline - now)), signal);
      poll = alarm.woken ? 1 : Math.min(poll * 2, maxPoll());
    }
  } finally {
    alarm.stop();
  }
}

/**
 * The sleep of a lock waiter that a {@link LockWake} can cut short: `woken` says whether an
 * announcement came since it was last cleared. `stop()` unsubscribes.
 */
export class WakeableSleep {
  woken = false;
  #interrupt: (() => void) | undefined;
  readonly #unsubscribe: (() => void) | undefined;

  constructor(wake?: LockWake) {
    this.#unsubscribe = wake?.(() => {
      this.woken = true;
      this.#interrupt?.();
    });
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason); // aborted while the waiter was trying
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        this.#interrupt = undefined;
        resolve();
      };
      const aborted = () => {
        done();
        reject(signal?.reason);
      };
      const timer = setTimeout(done, ms);
      this.#interrupt = done;
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  stop(): void {
    this.#unsubscribe?.();
  }
}

/**
 * The lock waiters of a store whose backend announces releases, by lock name: `wakeFor(name)`
 * is the {@link LockWake} to pass to {@link pollLock}, `wake(name)` is what the store calls on
 * an announcement. `listen` runs whenever a waiter subscribes (start the backend's listener).
 */
export class ReleaseWakeups {
  readonly #waiters = new Map<string, Set<() => void>>();

  /**
   * @param listen starts the backend's listener (called whenever a waiter subscribes)
   * @param live whether the listener hears announcements now
   */
  constructor(
    private readonly listen: () => void = () => {},
    private readonly live?: () => boolean,
  ) {}

  wakeFor(name: string): LockWake {
    const wake: LockWake = (notify) => {
      this.listen();
      const waiters = this.#waiters.get(name) ?? new Set<() => void>();
      this.#waiters.set(name, waiters);
      waiters.add(notify);
      return () => {
        waiters.delete(notify);
        if (waiters.size === 0 && this.#waiters.get(name) === waiters) this.#waiters.delete(name);
      };
    };
    if (this.live !== undefined) wake.live = this.live;
    return wake;
  }

  wake(name: string): void {
    for (const notify of this.#waiters.get(name) ?? []) notify();
  }

  clear(): void {
    this.#waiters.clear();
  }
}
