/** `tokenkeeper/file`: the Node.js file store. */

export type { FileStoreOptions } from '../store/file/index.js';
export { defaultStorePath, fileStore } from '../store/file/index.js';
