import { describe, expect, it } from 'vitest';
import { memoryStore, type Store, withLock } from '../src/index.js';

/** A memory store whose releases fail. */
function failingRelease(): Store {
  const inner = memoryStore();
  return {
    ...inner,
    lock: async (k, o) => {
      const lease = await inner.lock(k, o);
      return {
        ...lease,
        key: lease.key,
        expiresAt: lease.expiresAt,
        release: () => Promise.reject(new Error('release failed')),
      };
    },
  };
}

describe('withLock', () => {
  it('returns the work’s result when the release fails, and reports the failure', async () => {
    const heard: unknown[] = [];
    const result = await withLock(failingRelease(), 'k', async () => 42, { onReleaseError: (e) => heard.push(e) });
    expect(result).toBe(42);
    expect(String(heard[0])).toContain('release failed');
  });

  it('rejects with the work’s error, not the release’s', async () => {
    await expect(
      withLock(failingRelease(), 'k', async () => {
        throw new Error('work failed');
      }),
    ).rejects.toThrow('work failed');
  });

  it('holds the lock while the work runs, and frees it after', async () => {
    const store = memoryStore();
    let inside = false;
    await withLock(store, 'k', async () => {
      inside = true;
      await expect(store.lock('k', { waitMs: 0 })).rejects.toMatchObject({ code: 'TOKENKEEPER_LOCK_TIMEOUT' });
    });
    expect(inside).toBe(true);
    await (await store.lock('k', { waitMs: 0 })).release();
  });
});
