/** `tokenkeeper/testing/suite`: the store conformance suite for any test framework (no vitest import). */
export * from '../testing/suite.js';
