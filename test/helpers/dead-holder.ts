import { expect } from 'vitest';
import { isTokenkeeperError, type Store } from '../../src/index.js';
import { startChild, waitForOutput } from './child.js';
import type { StoreConfig } from './store-config.js';

/**
 * A process takes the lock 'held' with a lease of `leaseMs` and is killed with SIGKILL; the
 * lock must be free again within the lease, or within `withinMs` where the store can tell the
 * holder is gone. Returns how long the next holder waited.
 */
export async function lockOfKilledHolderFrees(
  store: Store,
  config: StoreConfig,
  leaseMs: number,
  withinMs = leaseMs + 1_000,
): Promise<number> {
  const holder = startChild('lock-holder.ts', [JSON.stringify(config), String(leaseMs)]);
  await waitForOutput(holder.child, 'held');
  const busy = await store.lock('held', { waitMs: 50 }).catch((e) => e);
  expect(isTokenkeeperError(busy, 'TOKENKEEPER_LOCK_TIMEOUT')).toBe(true);
  holder.child.kill('SIGKILL');
  expect((await holder.done).signal).toBe('SIGKILL');
  const started = Date.now();
  const lease = await store.lock('held', { waitMs: leaseMs + 5_000 });
  const waited = Date.now() - started;
  await lease.release();
  expect(waited).toBeLessThan(withinMs);
  return waited;
}
