/** `tokenkeeper/podio`: any tokenkeeper store as a podio-js session store. */

export type { PodioAuthObject, PodioAuthType, PodioSessionStore, PodioSessionStoreOptions } from './edges/podio.js';
export {
  fromPodioPhpRecord,
  importPodioSessionFile,
  podioSessionStore,
  toPodioPhpRecord,
} from './edges/podio.js';
