import { type LockHolder, LockTimeoutError } from '../../errors.js';
import type { LockOptions } from '../types.js';
import { lockOptions, sleep } from './records.js';

const MAX_POLL_MS = 25;

/**
 * The waiting part of a lease lock whose backend can only "try": tries at once, then backs off
 * (1 ms doubling to 25 ms, with jitter) until `waitMs`, then throws `TOKENKEEPER_LOCK_TIMEOUT`
 * with whatever the backend says about the holder.
 */
export async function pollLock<T>(
  key: string,
  options: LockOptions | undefined,
  tryAcquire: (leaseMs: number) => Promise<T | undefined>,
  holder: () => Promise<LockHolder | undefined> = async () => undefined,
): Promise<T> {
  const { leaseMs, waitMs, signal } = lockOptions(options);
  const deadline = Date.now() + waitMs;
  let poll = 1;
  for (;;) {
    signal?.throwIfAborted();
    const got = await tryAcquire(leaseMs);
    if (got !== undefined) return got;
    const now = Date.now();
    if (now >= deadline) throw new LockTimeoutError(key, waitMs, await holder().catch(() => undefined));
    await sleep(Math.max(1, Math.min(poll + Math.random() * poll, deadline - now)), signal);
    poll = Math.min(poll * 2, MAX_POLL_MS);
  }
}
