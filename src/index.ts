/**
 * tokenkeeper core: browser-safe (no `node:` imports). Node-only stores live in subpath
 * exports such as `tokenkeeper/file`.
 */

export type { BrowserEncryptionKeyOptions } from './codec/browser-key.js';
export { browserEncryptionKey } from './codec/browser-key.js';
export type { EncryptionKey, EncryptionOptions } from './codec/encrypted.js';
export { encryptedStore } from './codec/encrypted.js';
export type { ErrorCode, LockHolder } from './errors.js';
export { ErrorCodes, isTokenkeeperError, LockTimeoutError, TokenkeeperError } from './errors.js';
export type { DpopAlgorithm, DpopOptions } from './session/dpop-options.js';
export type { SessionEventName, SessionEvents } from './session/events.js';
export type { LoginGrant, TokenExchangeGrant } from './session/grants.js';
export type { AttributeValue, Instrumentation } from './session/instrumentation.js';
export type { AuthorizeOptions, AuthorizeResult, CallbackInput, CallbackOptions } from './session/login/authorize.js';
export type { DeviceCodeGrant, DevicePrompt } from './session/login/device.js';
export type { LoginOptions, SessionManagerOptions } from './session/manager.js';
export { SessionManager } from './session/manager.js';
export type { ClientAuthMethod, ClientOptions, EndpointOptions, RetryOptions } from './session/oauth.js';
export { TokenEndpointError } from './session/oauth.js';
export type { EndSessionOptions, LogoutOptions, LogoutResult, RevocationOutcome } from './session/session.js';
export { Session } from './session/session.js';
export type { IndexedDbStoreOptions } from './store/browser/indexeddb.js';
export { indexedDbStore } from './store/browser/indexeddb.js';
export type { WebStorage, WebStorageStoreOptions } from './store/browser/web-storage.js';
export { webStorageStore } from './store/browser/web-storage.js';
export { assertValidKey, MAX_KEY_LENGTH } from './store/kit/keys.js';
export { memoryStore } from './store/memory.js';
export type {
  ChangeListener,
  DeleteOptions,
  JsonValue,
  Lease,
  LockOptions,
  SetOptions,
  Store,
  StoreCapabilities,
  StoreEntry,
  StoreRecord,
} from './store/types.js';
export { type WithLockOptions, withLock } from './store/with-lock.js';
export type { StorableTokenSet, TokenResponse } from './token/token-set.js';
export { TokenSet } from './token/token-set.js';
