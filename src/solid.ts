/** `tokenkeeper/solid`: any tokenkeeper store as an `IStorage` for `@inrupt/solid-client-authn-*`. */

export type { IStorage, SolidStorage, SolidStorageOptions } from './edges/solid.js';
export { clearSessionsFromStore, getSessionIdsFromStore, SOLID_SESSION_INDEX, solidStorage } from './edges/solid.js';
