import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ConformanceOptions, type ConformanceTestApi, defineStoreConformance, type MakeStore } from './suite.js';

/**
 * The definition of a tokenkeeper store, as vitest tests. Run it on your own store from a test
 * file:
 *
 * @example
 * import { describeStoreConformance } from 'tokenkeeper/testing';
 * describeStoreConformance('my store', () => myStore({ namespace: `t${Date.now()}` }));
 */
export function describeStoreConformance(name: string, makeStore: MakeStore, options: ConformanceOptions = {}): void {
  const api = { describe, it, beforeEach, afterEach, expect } as unknown as ConformanceTestApi;
  defineStoreConformance(api, name, makeStore, options);
}
