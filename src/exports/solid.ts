/** `tokenkeeper/solid`: any tokenkeeper store as an `IStorage` for `@inrupt/solid-client-authn-*`. */

export type { IStorage, SolidStorage, SolidStorageOptions } from '../integrations/solid.js';
export {
  clearSessionsFromStore,
  getSessionIdsFromStore,
  SOLID_SESSION_INDEX,
  solidStorage,
} from '../integrations/solid.js';
