/** `tokenkeeper/testing`: the store conformance suite, for vitest. */

export type { ConformanceOptions, MakeStore } from './testing/conformance.js';
export { describeStoreConformance } from './testing/conformance.js';
