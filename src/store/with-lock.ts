import type { LockOptions, Store } from './types.js';

/** Runs `fn` while holding `store`'s lock on `key`, and always releases it. */
export async function withLock<T>(store: Store, key: string, fn: () => Promise<T>, options?: LockOptions): Promise<T> {
  const lease = await store.lock(key, options);
  try {
    return await fn();
  } finally {
    await lease.release();
  }
}
