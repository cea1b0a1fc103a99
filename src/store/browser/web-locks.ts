import { LockTimeoutError } from '../../errors.js';
import { assertValidKey } from '../kit/keys.js';
import { createLease } from '../kit/lease.js';
import { lockOptions } from '../kit/records.js';
import type { Lease, LockOptions } from '../types.js';

/** The part of the Web Locks API (`navigator.locks`) the browser stores use. */
export interface WebLockManager {
  request(
    name: string,
    options: { ifAvailable?: boolean; signal?: AbortSignal },
    callback: (lock: unknown) => unknown,
  ): Promise<unknown>;
}

/**
 * `navigator.locks` when this page has it. It is missing outside secure contexts (a page served
 * over plain http from anything but localhost) and in very old browsers.
 */
export function browserLocks(): WebLockManager | undefined {
  const locks = (globalThis as { navigator?: { locks?: WebLockManager } }).navigator?.locks;
  return locks !== undefined && locks !== null && typeof locks.request === 'function' ? locks : undefined;
}

/**
 * Store locks on the Web Locks API: one holder across every tab, worker and frame of an origin.
 * The browser frees a lock the moment the tab holding it closes or crashes, so a tab closed in
 * the middle of a refresh never wedges the others. The lease (`leaseMs`) is kept by a timer in
 * the holding tab: it ends the lock if the holder neither releases nor extends it in time.
 */
export class WebLocks {
  readonly #locks: WebLockManager;
  readonly #prefix: string;
  readonly #fence: LockFence | undefined;

  constructor(locks: WebLockManager, prefix: string, fence?: LockFence) {
    this.#locks = locks;
    this.#prefix = prefix;
    this.#fence = fence;
  }

  async acquire(key: string, options?: LockOptions): Promise<Lease> {
    assertValidKey(key);
    const { leaseMs, waitMs, signal } = lockOptions(options);
    signal?.throwIfAborted();
    const held = await this.#request(key, waitMs, signal);
    if (held === undefined) throw new LockTimeoutError(key, waitMs);
    if (this.#fence) {
      try {
        await this.#fence.wait(key);
      } catch (error) {
        await held();
        throw error;
      }
    }
    return this.#lease(key, held, leaseMs);
  }

  /**
   * Resolves with a function that frees the lock (and resolves once the browser has let it go,
   * so a request right after sees it free), or `undefined` when `waitMs` ran out.
   */
  #request(key: string, waitMs: number, signal?: AbortSignal): Promise<(() => Promise<void>) | undefined> {
    const name = this.#prefix + key;
    return new Promise((resolve, reject) => {
      let requested: Promise<unknown> = Promise.resolve();
      const onGranted = (lock: unknown) => {
        if (lock === null) {
          resolve(undefined); // ifAvailable, and someone holds it
          return undefined;
        }
        return new Promise<void>((free) =>
          resolve(() => {
            free();
            return requested.then(
              () => {},
              () => {},
            );
          }),
        );
      };
      if (waitMs === 0) {
        requested = this.#locks.request(name, { ifAvailable: true }, onGranted);
        requested.catch(reject);
        return;
      }
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(timedOut), waitMs);
      const onAbort = () => controller.abort(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      requested = this.#locks.request(name, { signal: controller.signal }, (lock) => {
        done();
        return onGranted(lock);
      });
      requested.catch((error: unknown) => {
        done();
        if (controller.signal.reason === timedOut) resolve(undefined);
        else reject(controller.signal.aborted ? controller.signal.reason : error);
      });
    });
  }

  #lease(key: string, free: () => Promise<void>, leaseMs: number): Lease {
    const takenAt = Date.now();
    let state: 'held' | 'expired' | 'released' = 'held';
    const fence = this.#fence;
    // Frees the Web Lock, first leaving the fence for the next holder when there is one.
    const release = async () => {
      if (fence) await fence.mark(key).catch(() => {});
      await free();
    };
    const expire = () => {
      if (state !== 'held') return;
      state = 'expired';
      void release();
    };
    let timer = setTimeout(expire, leaseMs);
    // A Web Lock is free only once its holder let go, or its tab ended: never under a live holder.
    return createLease(
      key,
      leaseMs,
      takenAt,
      {
        release: async () => {
          clearTimeout(timer);
          const wasHeld = state === 'held';
          state = 'released';
          if (wasHeld) await release();
        },
        // A lease that ran out freed its Web Lock: another tab may have held it since, so it is
        // never ours again (a holder that extends to fence its next request must learn that).
        renew: async (next) => {
          if (state !== 'held') return false;
          clearTimeout(timer);
          timer = setTimeout(expire, next);
          return true;
        },
      },
      'released',
    );
  }
}

const timedOut = Symbol('lock wait timed out');

/**
 * What a store whose writes reach other tabs late (localStorage) needs around its Web Lock: the
 * holder leaves a mark before it frees the lock, and the next holder waits until its own view
 * of the storage has caught up with that mark before it reads anything.
 */
export interface LockFence {
  mark(key: string): Promise<void>;
  wait(key: string): Promise<void>;
}
