/** `tokenkeeper/sharetribe`: any tokenkeeper store as a Sharetribe SDK token store (Node). */

export type { SharetribeToken, SharetribeTokenStore, SharetribeTokenStoreOptions } from './edges/sharetribe.js';
export {
  importSharetribeTokenFile,
  sharetribeFileStore,
  sharetribeMemoryStore,
  sharetribeSdkTokenFile,
  sharetribeTokenStore,
} from './edges/sharetribe.js';
