/** `tokenkeeper/podio`: any tokenkeeper store as a podio-js session store. */

export type {
  PodioAuthObject,
  PodioAuthType,
  PodioLike,
  PodioSessionStore,
  PodioSessionStoreOptions,
  ShareRefreshOptions,
} from '../integrations/podio.js';
export {
  fromPodioPhpRecord,
  importPodioSessionFile,
  podioSessionStore,
  toPodioPhpRecord,
} from '../integrations/podio.js';
