/** `tokenkeeper/podio`: any tokenkeeper store as a podio-js session store. */

export type { PodioAuthObject, PodioAuthType, PodioSessionStore, PodioSessionStoreOptions } from './edges/podio.js';
export { importPodioSessionFile, podioSessionStore } from './edges/podio.js';
