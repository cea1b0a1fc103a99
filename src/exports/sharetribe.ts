/** `tokenkeeper/sharetribe`: any tokenkeeper store as a Sharetribe SDK token store (Node). */

export type { SharetribeToken, SharetribeTokenStore, SharetribeTokenStoreOptions } from '../integrations/sharetribe.js';
export {
  importSharetribeTokenFile,
  sharetribeFileStore,
  sharetribeMemoryStore,
  sharetribeSdkTokenFile,
  sharetribeTokenStore,
} from '../integrations/sharetribe.js';
