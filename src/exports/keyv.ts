/** `tokenkeeper/keyv`: any keyv 5 backend as a store (with the limits its docs state). */
export type { KeyvStoreOptions } from '../store/keyv/index.js';
export { keyvStore } from '../store/keyv/index.js';
