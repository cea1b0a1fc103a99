// The store kit's waiting loop, on its edges: an abort that lands while a try is in flight, and
// a wake-up that cuts a sleep short.
import { describe, expect, it } from 'vitest';
import { keepAlive, pollLock } from '../src/exports/store-kit.js';
import { memoryStore } from '../src/index.js';

describe('pollLock', () => {
  it('rejects with the abort reason when the signal aborts while a try is in flight', async () => {
    const controller = new AbortController();
    const waiting = pollLock('k', { waitMs: 5_000, signal: controller.signal }, async () => {
      controller.abort(new Error('gave up mid-try'));
      return undefined;
    });
    await expect(waiting).rejects.toThrow('gave up mid-try');
  });

  it('tries again at once when woken, however far its polling had backed off', async () => {
    let notify: (() => void) | undefined;
    let tries = 0;
    let free = false;
    const started = Date.now();
    const got = pollLock(
      'k',
      { waitMs: 10_000 },
      async () => {
        tries++;
        return free ? 'mine' : undefined;
      },
      undefined,
      (wake) => {
        notify = wake;
        return () => {
          notify = undefined;
        };
      },
    );
    await new Promise((r) => setTimeout(r, 1_600)); // past the warm-up: polls every 200 ms now
    const before = tries;
    free = true;
    const wokenAt = Date.now();
    notify?.();
    expect(await got).toBe('mine');
    expect(Date.now() - wokenAt).toBeLessThan(100); // polling would take 200 to 400 ms
    expect(tries).toBe(before + 1);
    expect(notify).toBeUndefined(); // unsubscribed once it had the lock
    expect(Date.now() - started).toBeGreaterThan(1_500);
  });
});

describe('keepAlive', () => {
  it('keeps a short lease held for as long as the work runs, and stops when released', async () => {
    const store = memoryStore();
    const lease = keepAlive(await store.lock('k', { leaseMs: 100 }), 30);
    await new Promise((r) => setTimeout(r, 350)); // three leases long
    await expect(store.lock('k', { waitMs: 0 })).rejects.toThrow(/busy|held|lock/i);
    expect(lease.lost).toBe(false);
    await lease.release();
    await (await store.lock('k', { waitMs: 0 })).release();
  });
});
