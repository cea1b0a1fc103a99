import type { LockOptions, Store } from './types.js';

export interface WithLockOptions extends LockOptions {
  /**
   * Hears a release that failed after the work ran (the lease then ends by itself). Without it
   * such a failure is dropped: it never replaces the work's result or its error.
   */
  onReleaseError?: (error: unknown) => void;
}

/**
 * Runs `fn` while holding `store`'s lock on `key`, and always releases it. Resolves with what
 * `fn` resolved with, or rejects with what it threw: a failed release never masks either (it goes
 * to `onReleaseError`; the lease frees the lock when it ends).
 */
export async function withLock<T>(
  store: Store,
  key: string,
  fn: () => Promise<T>,
  options?: WithLockOptions,
): Promise<T> {
  const { onReleaseError, ...lockOptions } = options ?? {};
  const lease = await store.lock(key, lockOptions);
  try {
    return await fn();
  } finally {
    await lease.release().catch((error: unknown) => onReleaseError?.(error));
  }
}
