/** `tokenkeeper/testing`: the store conformance suite, for vitest or any framework. */

export { describeStoreConformance } from '../testing/conformance.js';
export type {
  ConformanceAssertion,
  ConformanceOptions,
  ConformanceTestApi,
  MakeStore,
} from '../testing/suite.js';
export { defineStoreConformance } from '../testing/suite.js';
