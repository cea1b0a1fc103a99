import { assertValidKey, assertValidPrefix } from './kit/keys.js';
import { LocalLocks } from './kit/local-locks.js';
import { checkDeleteOptions, checkSetOptions, closedError, copyRecord } from './kit/records.js';
import { checkVersion, planDelete } from './kit/write.js';
import type { DeleteOptions, Lease, LockOptions, SetOptions, Store, StoreEntry, StoreRecord } from './types.js';

interface Slot {
  value: StoreRecord;
  version: number;
  expiresAt: number | undefined;
}

const SWEEP_EVERY = 1024;

/**
 * A store in this process's memory: for tests, short-lived scripts, and as the default of the
 * session manager. Its lock excludes callers within this process only.
 *
 * Records are copied on `set` and handed out deeply frozen by `get`, so no caller can change
 * what another reads.
 */
export function memoryStore(): Store {
  const slots = new Map<string, Slot>();
  const locks = new LocalLocks();
  let version = 0; // store-wide, so a deleted and re-created key never repeats a version
  let writes = 0;
  let closed = false;

  const live = (key: string, now: number): Slot | undefined => {
    const slot = slots.get(key);
    if (slot?.expiresAt !== undefined && slot.expiresAt <= now) {
      slots.delete(key);
      return undefined;
    }
    return slot;
  };
  const open = () => {
    if (closed) throw closedError('memory');
  };
  const sweep = (now: number) => {
    for (const [key, slot] of slots) if (slot.expiresAt !== undefined && slot.expiresAt <= now) slots.delete(key);
  };

  return {
    name: 'memory',
    capabilities: { crossProcessLock: false },

    async get(key: string): Promise<StoreEntry | undefined> {
      open();
      assertValidKey(key);
      const slot = live(key, Date.now());
      if (slot === undefined) return undefined;
      return slot.expiresAt === undefined
        ? { value: slot.value, version: slot.version }
        : { value: slot.value, version: slot.version, expiresAt: slot.expiresAt };
    },

    async set(key: string, value: StoreRecord, options?: SetOptions): Promise<number> {
      open();
      assertValidKey(key);
      const now = Date.now();
      const expiresAt = checkSetOptions(options, now);
      const copy = copyRecord(value, true);
      if (options?.ifVersion !== undefined) checkVersion(key, options.ifVersion, live(key, now)?.version ?? 0);
      version += 1;
      slots.set(key, { value: copy, version, expiresAt });
      if (++writes % SWEEP_EVERY === 0) sweep(now);
      return version;
    },

    async delete(key: string, options?: DeleteOptions): Promise<boolean> {
      open();
      assertValidKey(key);
      checkDeleteOptions(options);
      const slot = live(key, Date.now());
      return planDelete(key, slot, options) && slots.delete(key);
    },

    async *keys(prefix = ''): AsyncIterable<string> {
      open();
      assertValidPrefix(prefix);
      for (const key of slots.keys()) {
        if (key.startsWith(prefix) && live(key, Date.now()) !== undefined) yield key;
      }
    },

    lock(key: string, options?: LockOptions): Promise<Lease> {
      if (closed) return Promise.reject(closedError('memory'));
      return locks.acquire(key, options);
    },

    async close(): Promise<void> {
      closed = true;
      slots.clear();
    },
  };
}
