/**
 * A small test runner for pages: `describe`, `it`, `beforeEach`, `afterEach` and an `expect`
 * with the matchers the store conformance suite uses. Results come back to vitest through
 * `page.evaluate`, which asserts on them.
 */
import type { ConformanceAssertion, ConformanceTestApi } from '../../../src/testing/suite.js';

export interface TestResult {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}

interface Test {
  name: string;
  body: () => Promise<void>;
  timeoutMs: number;
  before: (() => Promise<void>)[];
  after: (() => Promise<void>)[];
}

/** Collects the tests `define` declares, then runs them one after another. */
export async function runTests(
  define: (api: ConformanceTestApi) => void,
  filter?: string,
  defaultTimeoutMs = 20_000,
): Promise<TestResult[]> {
  const tests: Test[] = [];
  const path: string[] = [];
  const before: (() => Promise<void>)[][] = [[]];
  const after: (() => Promise<void>)[][] = [[]];
  const api: ConformanceTestApi = {
    describe(name, body) {
      path.push(name);
      before.push([]);
      after.push([]);
      body();
      path.pop();
      before.pop();
      after.pop();
    },
    it(name, body, timeoutMs = defaultTimeoutMs) {
      tests.push({
        name: [...path, name].join(' > '),
        body,
        timeoutMs,
        before: before.flat(),
        after: after.flat().reverse(),
      });
    },
    beforeEach(body) {
      before.at(-1)?.push(body);
    },
    afterEach(body) {
      after.at(-1)?.push(body);
    },
    expect,
  };
  define(api);
  const results: TestResult[] = [];
  for (const test of tests) {
    if (filter && !test.name.includes(filter)) continue;
    const started = performance.now();
    try {
      await withTimeout(async () => {
        for (const hook of test.before) await hook();
        try {
          await test.body();
        } finally {
          for (const hook of test.after) await hook();
        }
      }, test.timeoutMs);
      results.push({ name: test.name, ok: true, ms: performance.now() - started });
    } catch (error) {
      const e = error as Error;
      results.push({
        name: test.name,
        ok: false,
        error: `${e?.stack ?? String(error)}`,
        ms: performance.now() - started,
      });
    }
  }
  return results;
}

async function withTimeout(body: () => Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      body(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function expect(actual: unknown): ConformanceAssertion {
  const fail = (what: string, expected?: unknown): never => {
    throw new Error(`expected ${show(actual)} ${what}${expected === undefined ? '' : ` ${show(expected)}`}`);
  };
  return {
    toBe: (expected) => void (Object.is(actual, expected) || fail('to be', expected)),
    toEqual: (expected) => void (equal(actual, expected) || fail('to equal', expected)),
    toBeUndefined: () => void (actual === undefined || fail('to be undefined')),
    toBeGreaterThan: (n) => void ((actual as number) > n || fail('to be greater than', n)),
    toBeGreaterThanOrEqual: (n) => void ((actual as number) >= n || fail('to be at least', n)),
    toContain: (s) => void ((actual as string).includes(s) || fail('to contain', s)),
    toHaveLength: (n) =>
      void ((actual as unknown[]).length === n || fail(`to have length ${n}, has`, (actual as unknown[]).length)),
    resolves: {
      async toBeGreaterThan(n) {
        const value = await (actual as Promise<number>);
        if (!(value > n)) throw new Error(`expected a promise of more than ${n}, got ${show(value)}`);
      },
    },
    rejects: {
      async toThrow(message) {
        try {
          await (actual as Promise<unknown>);
        } catch (error) {
          if (String((error as Error)?.message ?? error).includes(message)) return;
          throw new Error(`expected a rejection with ${show(message)}, got ${String(error)}`);
        }
        throw new Error('expected a rejection, but the promise resolved');
      },
    },
  };
}

/** Deep equality as vitest's toEqual: properties holding undefined count as absent. */
export function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => equal(v, b[i]));
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return (
    ka.length === kb.length &&
    ka.every((k) => equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

function show(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 200 ? `${text.slice(0, 200)}...` : text;
  } catch {
    return String(value);
  }
}
