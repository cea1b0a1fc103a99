/** `tokenkeeper/keychain`: the OS keychain as a store (`@napi-rs/keyring`, an optional peer). */

export type { KeychainStoreOptions } from '../store/keychain/index.js';
export { keychainStore } from '../store/keychain/index.js';
