/**
 * The store kit: the parts every built-in store is made of, for writing a store of your own
 * that behaves exactly like them. Pair it with `tokenkeeper/testing`'s conformance suite.
 *
 * - Keys and records: {@link assertValidKey}, {@link assertValidPrefix}, {@link copyRecord},
 *   {@link checkSetOptions}, {@link checkDeleteOptions}, {@link lockOptions}.
 * - Writes: {@link readStored}, {@link planSet}, {@link planDelete} decide compare-and-set and
 *   corrupt records the one way the contract defines.
 * - Locks: {@link createLease} (one `Lease` meaning), {@link keepAlive} (a heartbeat),
 *   {@link pollLock} (waiting on a backend that can only try, woken by {@link ReleaseWakeups}),
 *   {@link LocalLocks} (in-process leases).
 * - Errors: {@link versionConflict}, {@link corruptRecord}, {@link closedError}.
 */
export { assertValidKey, assertValidPrefix, MAX_KEY_LENGTH, storeNamespace } from './keys.js';
export { createLease, type KeptLease, keepAlive, type LeaseBackend } from './lease.js';
export { LocalLocks } from './local-locks.js';
export { type LockWake, pollLock, ReleaseWakeups } from './poll-lock.js';
export {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  corruptRecord,
  DEFAULT_LEASE_MS,
  DEFAULT_WAIT_MS,
  isPlainObject,
  lockOptions,
  parseJson,
  randomToken,
  rowEntry,
  sleep,
  versionConflict,
} from './records.js';
export { checkVersion, planDelete, planSet, readStored, readStoredSync, type Stored } from './write.js';
