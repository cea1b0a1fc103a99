/** `tokenkeeper/store-kit`: the parts every built-in store is made of, for writing your own. */

export { isTokenkeeperError, LockTimeoutError, redactedCause, TokenkeeperError } from '../errors.js';
export * from '../store/kit/index.js';
export type {
  ChangeListener,
  DeleteOptions,
  Lease,
  LockHolder,
  LockOptions,
  SetOptions,
  Store,
  StoreCapabilities,
  StoreEntry,
  StoreRecord,
} from '../store/types.js';
