import { type ErrorCode, isTokenkeeperError } from '../errors.js';
import { MAX_KEY_LENGTH } from '../store/kit/keys.js';
import type { Store, StoreRecord } from '../store/types.js';

/** Returns a new, empty store; for a server store, one under a key prefix no other run uses. */
export type MakeStore = () => Store | Promise<Store>;

export interface ConformanceOptions {
  /** How many keys the listing test writes (default 2,000). */
  listCount?: number;
  /** Lease and TTL durations in the timing tests are multiplied by this (default 1). */
  timeScale?: number;
  /**
   * Plants, in `store`'s backend, something at `key` that the store cannot read as its record
   * (truncated JSON, a row edited by hand, a value another program wrote). With it the suite
   * checks the corrupt-record semantics of {@link Store}; without it those tests are skipped.
   */
  corrupt?: (store: Store, key: string) => Promise<void>;
}

/** The matchers the suite uses; vitest's and jest's `expect` have them all. */
export interface ConformanceAssertion {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toBeUndefined(): void;
  toBeGreaterThan(expected: number): void;
  toBeGreaterThanOrEqual(expected: number): void;
  toContain(expected: string): void;
  toHaveLength(expected: number): void;
  resolves: { toBeGreaterThan(expected: number): Promise<unknown> };
  rejects: { toThrow(expected: string): Promise<unknown> };
}

/**
 * The test functions the suite is written with: vitest's (see `describeStoreConformance`),
 * jest's, or mocha's with an `expect` that has {@link ConformanceAssertion}'s matchers.
 */
export interface ConformanceTestApi {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>, timeoutMs?: number): void;
  beforeEach(body: () => Promise<void>): void;
  afterEach(body: () => Promise<void>): void;
  expect(actual: unknown): ConformanceAssertion;
}

/**
 * The definition of a tokenkeeper store, written against any test framework's functions. In a
 * browser page, in jest or in mocha, pass their `describe`, `it`, `beforeEach`, `afterEach` and
 * `expect`; with vitest, `describeStoreConformance` does it for you.
 */
export function defineStoreConformance(
  api: ConformanceTestApi,
  name: string,
  makeStore: MakeStore,
  options: ConformanceOptions = {},
): void {
  const { describe, it, beforeEach, afterEach, expect } = api;
  const listCount = options.listCount ?? 2000;
  const t = (ms: number) => Math.round(ms * (options.timeScale ?? 1));

  describe(`store conformance: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('get, set, delete', () => {
      it('reads nothing for a missing key', async () => {
        expect(await store.get('missing')).toBeUndefined();
      });

      it('round-trips a record and bumps its version on every set', async () => {
        const rec = { a: 1, b: 'two', c: [true, null, { d: 4.5 }], e: { nested: { deep: 'ünïcödé 🔑' } } };
        const v1 = await store.set('k', rec);
        expect(Number.isSafeInteger(v1) && v1 > 0).toBe(true);
        expect(await store.get('k')).toEqual({ value: rec, version: v1 });
        const v2 = await store.set('k', { a: 2 });
        expect(v2).toBeGreaterThan(v1);
        expect(await store.get('k')).toEqual({ value: { a: 2 }, version: v2 });
      });

      it('keeps what was stored when the caller mutates its objects', async () => {
        const rec: StoreRecord = { list: [1], inner: { x: 1 } };
        await store.set('k', rec);
        (rec.list as number[]).push(2);
        (rec.inner as { x: number }).x = 99;
        const read = await store.get('k');
        try {
          (read!.value.list as number[]).push(3);
        } catch {
          // stores may hand out frozen records
        }
        expect((await store.get('k'))?.value).toEqual({ list: [1], inner: { x: 1 } });
      });

      it('deletes, and says whether there was a record', async () => {
        await store.set('k', { a: 1 });
        expect(await store.delete('k')).toBe(true);
        expect(await store.get('k')).toBeUndefined();
        expect(await store.delete('k')).toBe(false);
      });

      it('deletes with force whatever is at a key, and refuses force with ifVersion', async () => {
        await store.set('forced', { a: 1 });
        expect(await store.delete('forced', { force: true })).toBe(true);
        expect(await store.get('forced')).toBeUndefined();
        expect(await store.delete('forced', { force: true })).toBe(false);
        await expectCode(store.delete('forced', { force: true, ifVersion: 1 }), 'TOKENKEEPER_INVALID_ARGUMENT');
      });

      it('keeps different keys apart', async () => {
        await store.set('a', { v: 'a' });
        await store.set('A', { v: 'A' });
        await store.set('%41', { v: '%41' });
        expect((await store.get('a'))?.value).toEqual({ v: 'a' });
        expect((await store.get('A'))?.value).toEqual({ v: 'A' });
        expect((await store.get('%41'))?.value).toEqual({ v: '%41' });
      });
    });

    describe('bad input', () => {
      const badKeys: [string, unknown][] = [
        ['a number', 42],
        ['undefined', undefined],
        ['null', null],
        ['an object', { toString: () => 'k' }],
        ['the empty string', ''],
        ['a 10 KB string', 'k'.repeat(10_240)],
        ['a string with NUL', 'a\u0000b'],
        ['a lone surrogate', 'a\uD800b'],
      ];
      for (const [label, key] of badKeys) {
        it(`refuses ${label} as a key in every method`, async () => {
          await expectCode(store.get(key as string), 'TOKENKEEPER_INVALID_KEY');
          await expectCode(store.set(key as string, { a: 1 }), 'TOKENKEEPER_INVALID_KEY');
          await expectCode(store.delete(key as string), 'TOKENKEEPER_INVALID_KEY');
          await expectCode(store.lock(key as string, { waitMs: 0 }), 'TOKENKEEPER_INVALID_KEY');
        });
      }

      const badRecords: [string, unknown][] = [
        ['null', null],
        ['an array', [1, 2]],
        ['a string', '{"a":1}'],
        ['a number', 7],
        ['a Date', new Date()],
        ['a Map', new Map()],
        ['a record holding NaN', { a: Number.NaN }],
        ['a record holding a function', { a: () => 1 }],
        ['a record holding a bigint', { a: 1n }],
        ['a record holding a class instance', { a: new (class Foo {})() }],
      ];
      for (const [label, value] of badRecords) {
        it(`refuses ${label} as a record, keeping what was stored`, async () => {
          await store.set('k', { kept: true });
          await expectCode(store.set('k', value as StoreRecord), 'TOKENKEEPER_INVALID_RECORD');
          expect((await store.get('k'))?.value).toEqual({ kept: true });
          await expectCode(store.set('new', value as StoreRecord), 'TOKENKEEPER_INVALID_RECORD');
          expect(await store.get('new')).toBeUndefined();
        });
      }

      it('refuses bad TTLs and versions', async () => {
        for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '100']) {
          await expectCode(store.set('k', { a: 1 }, { ttlMs: ttlMs as number }), 'TOKENKEEPER_INVALID_ARGUMENT');
        }
        for (const ifVersion of [-1, 1.5, '1', Number.NaN]) {
          await expectCode(
            store.set('k', { a: 1 }, { ifVersion: ifVersion as number }),
            'TOKENKEEPER_INVALID_ARGUMENT',
          );
        }
        expect(await store.get('k')).toBeUndefined();
      });

      it('refuses bad lock options', async () => {
        await expectCode(store.lock('k', { leaseMs: 0 }), 'TOKENKEEPER_INVALID_ARGUMENT');
        await expectCode(store.lock('k', { leaseMs: -5 }), 'TOKENKEEPER_INVALID_ARGUMENT');
        await expectCode(store.lock('k', { waitMs: Number.NaN }), 'TOKENKEEPER_INVALID_ARGUMENT');
      });
    });

    describe('hostile keys', () => {
      const hostile = [
        '../escape',
        '../../../../etc/passwd',
        'a/b/c',
        'a\\b',
        '.',
        '..',
        '.hidden',
        'CON',
        'name.json',
        'x.lock',
        '*',
        '?',
        '[abc]',
        'a*',
        'prefix:*',
        '{tag}',
        '%2F',
        ' spaces and\ttabs\n',
        'ключ 🔑 鍵',
        '\u00e9', // é precomposed
        'e\u0301', // é decomposed: a different key
        'k'.repeat(MAX_KEY_LENGTH),
        '🔑'.repeat(MAX_KEY_LENGTH / 2),
      ];

      it('stores each under exactly its own name', async () => {
        for (const [i, key] of hostile.entries()) await store.set(key, { i });
        for (const [i, key] of hostile.entries()) expect((await store.get(key))?.value).toEqual({ i });
        const listed = await collect(store.keys());
        expect(listed.sort()).toEqual([...hostile].sort());
      });

      it('never lets glob characters in a prefix widen a listing', async () => {
        for (const key of ['ab', 'a*', 'a?', 'a[b]', 'b']) await store.set(key, { key });
        expect(await collect(store.keys('a*'))).toEqual(['a*']);
        expect(await collect(store.keys('a?'))).toEqual(['a?']);
        expect(await collect(store.keys('a['))).toEqual(['a[b]']);
        expect(await collect(store.keys('*'))).toEqual([]);
        expect((await collect(store.keys('a'))).sort()).toEqual(['a*', 'a?', 'a[b]', 'ab']);
      });
    });

    describe('TTL', () => {
      it('expires a record after its TTL, and hides it from listings', async () => {
        await store.set('short', { a: 1 }, { ttlMs: t(300) });
        await store.set('long', { a: 2 });
        const entry = await store.get('short');
        expect(entry?.value).toEqual({ a: 1 });
        expect(entry?.expiresAt).toBeGreaterThan(Date.now());
        await sleep(t(500));
        expect(await store.get('short')).toBeUndefined();
        expect(await collect(store.keys())).toEqual(['long']);
      });

      it('drops the TTL when a record is set again without one', async () => {
        await store.set('k', { a: 1 }, { ttlMs: t(300) });
        await store.set('k', { a: 2 });
        await sleep(t(500));
        expect((await store.get('k'))?.value).toEqual({ a: 2 });
      });

      it('treats an expired record as absent for compare-and-set', async () => {
        await store.set('k', { a: 1 }, { ttlMs: t(200) });
        await sleep(t(400));
        await expect(store.set('k', { a: 2 }, { ifVersion: 0 })).resolves.toBeGreaterThan(0);
      });
    });

    describe('compare-and-set', () => {
      it('writes only over the version it was given', async () => {
        const v1 = await store.set('k', { a: 1 }, { ifVersion: 0 });
        await expectCode(store.set('k', { a: 'x' }, { ifVersion: 0 }), 'TOKENKEEPER_VERSION_CONFLICT');
        const v2 = await store.set('k', { a: 2 }, { ifVersion: v1 });
        const err = await expectCode(store.set('k', { a: 'stale' }, { ifVersion: v1 }), 'TOKENKEEPER_VERSION_CONFLICT');
        expect(err.key).toBe('k');
        expect(await store.get('k')).toEqual({ value: { a: 2 }, version: v2 });
        await expectCode(store.set('missing', { a: 1 }, { ifVersion: 5 }), 'TOKENKEEPER_VERSION_CONFLICT');
        expect(await store.get('missing')).toBeUndefined();
      });

      it('deletes only the version it was given', async () => {
        const v1 = await store.set('k', { a: 1 });
        await store.set('k', { a: 2 });
        await expectCode(store.delete('k', { ifVersion: v1 }), 'TOKENKEEPER_VERSION_CONFLICT');
        expect((await store.get('k'))?.value).toEqual({ a: 2 });
        const current = (await store.get('k'))?.version as number;
        // 0 means "only if there is none": over a record it is a conflict, over nothing a no-op.
        await expectCode(store.delete('k', { ifVersion: 0 }), 'TOKENKEEPER_VERSION_CONFLICT');
        expect(await store.delete('never-set', { ifVersion: 0 })).toBe(false);
        expect(await store.delete('k', { ifVersion: current })).toBe(true);
      });

      it('lets exactly one of many concurrent writers of one version win', async () => {
        const v = await store.set('k', { n: 0 });
        const results = await Promise.allSettled(
          Array.from({ length: 16 }, (_, i) => store.set('k', { n: i + 1 }, { ifVersion: v })),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected') expect(isTokenkeeperError(r.reason, 'TOKENKEEPER_VERSION_CONFLICT')).toBe(true);
        }
      });
    });

    describe('concurrent writes', () => {
      it('loses none of many concurrent sets of different keys', async () => {
        await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`c:${i}`, { i })));
        for (let i = 0; i < 100; i++) expect((await store.get(`c:${i}`))?.value).toEqual({ i });
      });

      it('gives every concurrent set of one key its own version', async () => {
        const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => store.set('same', { i })));
        expect(new Set(versions).size).toBe(20);
        const last = await store.get('same');
        expect(last?.version).toBe(Math.max(...versions));
      });
    });

    describe('listing', () => {
      it(`streams ${listCount} keys by prefix, each once`, async () => {
        const half = Math.floor(listCount / 2);
        for (let i = 0; i < listCount; i += 50) {
          await Promise.all(
            Array.from({ length: Math.min(50, listCount - i) }, (_, j) => {
              const n = i + j;
              return store.set(`${n < half ? 'users' : 'apps'}:${n}`, { n });
            }),
          );
        }
        const users = await collect(store.keys('users:'));
        expect(users).toHaveLength(half);
        expect(new Set(users).size).toBe(half);
        expect(users.every((k) => k.startsWith('users:'))).toBe(true);
        expect(await collect(store.keys())).toHaveLength(listCount);
      }, 120_000);

      it('can stop a listing early', async () => {
        for (let i = 0; i < 20; i++) await store.set(`k${i}`, { i });
        let seen = 0;
        for await (const _ of store.keys()) {
          if (++seen === 3) break;
        }
        expect(seen).toBe(3);
        expect(await collect(store.keys())).toHaveLength(20);
      });

      it('lists nothing from an empty store, and no lock names', async () => {
        expect(await collect(store.keys())).toEqual([]);
        const lease = await store.lock('locked');
        expect(await collect(store.keys())).toEqual([]);
        expect(await store.get('locked')).toBeUndefined();
        await lease.release();
      });
    });

    describe('lock', () => {
      it('excludes other holders while held', async () => {
        await store.set('counter', { n: 0 });
        let inside = 0;
        let overlap = false;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            const lease = await store.lock('counter', { waitMs: t(20_000) });
            try {
              inside += 1;
              if (inside > 1) overlap = true;
              const n = (await store.get('counter'))?.value.n as number;
              await sleep(2);
              await store.set('counter', { n: n + 1 });
              inside -= 1;
            } finally {
              await lease.release();
            }
          }),
        );
        expect(overlap).toBe(false);
        expect((await store.get('counter'))?.value).toEqual({ n: 8 });
      });

      it('times out with a typed error naming the key', async () => {
        const lease = await store.lock('busy', { leaseMs: t(5_000) });
        const started = Date.now();
        const err = await expectCode(store.lock('busy', { waitMs: t(200) }), 'TOKENKEEPER_LOCK_TIMEOUT');
        expect(Date.now() - started).toBeGreaterThanOrEqual(t(150));
        expect(err.key).toBe('busy');
        expect(err.message).toContain('busy');
        await lease.release();
        const again = await store.lock('busy', { waitMs: 0 });
        await again.release();
      });

      it('frees itself when the lease ends without a release', async () => {
        const abandoned = await store.lock('lease', { leaseMs: t(300) });
        expect(abandoned.expiresAt).toBeGreaterThan(Date.now());
        const started = Date.now();
        const next = await store.lock('lease', { waitMs: t(5_000) });
        expect(Date.now() - started).toBeGreaterThanOrEqual(t(200));
        // The old holder's late release must not free its successor's lock.
        await abandoned.release();
        await expectCode(store.lock('lease', { waitMs: t(100) }), 'TOKENKEEPER_LOCK_TIMEOUT');
        expect(await abandoned.extend(t(1000))).toBe(false);
        await next.release();
      });

      it('extends a held lease', async () => {
        const lease = await store.lock('ext', { leaseMs: t(300) });
        expect(await lease.extend(t(5_000))).toBe(true);
        expect(lease.expiresAt).toBeGreaterThan(Date.now() + t(3_000));
        await sleep(t(500));
        await expectCode(store.lock('ext', { waitMs: t(100) }), 'TOKENKEEPER_LOCK_TIMEOUT');
        await lease.release();
        await lease.release(); // twice is harmless
        await (await store.lock('ext', { waitMs: 0 })).release();
      });

      it('extend() without an argument renews the lease for the length it was taken with', async () => {
        const lease = await store.lock('heartbeat', { leaseMs: t(2_000) });
        await sleep(t(300));
        expect(await lease.extend()).toBe(true);
        expect(lease.expiresAt).toBeGreaterThan(Date.now() + t(1_500));
        await lease.release();
      });

      it('never extends a lease that ended and was held by someone else since, even once they let go', async () => {
        const first = await store.lock('fenced', { leaseMs: t(200) });
        const second = await store.lock('fenced', { waitMs: t(5_000) });
        await second.release();
        expect(await first.extend(t(5_000))).toBe(false);
        // The lock is free: the refused extend took nothing.
        await (await store.lock('fenced', { waitMs: 0 })).release();
      });

      it('extend() after release() is false and takes nothing', async () => {
        const lease = await store.lock('released', { leaseMs: t(2_000) });
        await lease.release();
        expect(await lease.extend()).toBe(false);
        await (await store.lock('released', { waitMs: 0 })).release();
      });

      it('says how a lock became free, where it can tell: released after a release', async () => {
        const first = await store.lock('predecessor');
        await first.release();
        const second = await store.lock('predecessor');
        expect([undefined, 'released', 'gone', 'expired']).toContain(first.predecessor as string);
        expect([undefined, 'released']).toContain(second.predecessor as string);
        await second.release();
      });

      it('locks keys independently', async () => {
        const a = await store.lock('a');
        const b = await store.lock('b', { waitMs: 0 });
        await a.release();
        await b.release();
      });

      it('stops waiting when the signal aborts', async () => {
        const lease = await store.lock('abort');
        const controller = new AbortController();
        const waiting = store.lock('abort', { waitMs: t(10_000), signal: controller.signal });
        setTimeout(() => controller.abort(new Error('gave up')), t(100));
        await expect(waiting).rejects.toThrow('gave up');
        await lease.release();
      });
    });

    const corrupt = options.corrupt;
    if (corrupt) {
      describe('corrupt records', () => {
        it('reads a corrupt record as TOKENKEEPER_CORRUPT_RECORD naming its key, and lists it', async () => {
          await store.set('good', { a: 1 });
          await corrupt(store, 'bad');
          const error = await expectCode(store.get('bad'), 'TOKENKEEPER_CORRUPT_RECORD');
          expect(error.key).toBe('bad');
          expect((await collect(store.keys())).sort()).toEqual(['bad', 'good']);
          expect((await store.get('good'))?.value).toEqual({ a: 1 }); // other keys unaffected
        });

        it('never overwrites a corrupt record: set and compare-and-set are refused', async () => {
          await corrupt(store, 'bad');
          for (const options of [undefined, { ifVersion: 0 }, { ifVersion: 1 }, { ttlMs: 60_000 }]) {
            await expectCode(store.set('bad', { a: 1 }, options), 'TOKENKEEPER_CORRUPT_RECORD');
          }
          await expectCode(store.delete('bad', { ifVersion: 1 }), 'TOKENKEEPER_CORRUPT_RECORD');
          await expectCode(store.delete('bad', { ifVersion: 0 }), 'TOKENKEEPER_CORRUPT_RECORD');
          await expectCode(store.get('bad'), 'TOKENKEEPER_CORRUPT_RECORD'); // still there, untouched
        });

        it('removes a corrupt record on delete (with or without force), then the key works again', async () => {
          await corrupt(store, 'bad');
          expect(await store.delete('bad')).toBe(true);
          expect(await store.get('bad')).toBeUndefined();
          const v = await store.set('bad', { a: 1 }, { ifVersion: 0 });
          expect((await store.get('bad'))?.version).toBe(v);
          await corrupt(store, 'bad');
          expect(await store.delete('bad', { force: true })).toBe(true);
          expect(await store.get('bad')).toBeUndefined();
        });
      });
    }

    describe('close', () => {
      it('refuses work after close', async () => {
        await store.close();
        await expectCode(store.get('k'), 'TOKENKEEPER_STORE_CLOSED');
        await expectCode(store.set('k', { a: 1 }), 'TOKENKEEPER_STORE_CLOSED');
      });
    });
  });
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode) {
  try {
    await promise;
  } catch (error) {
    if (isTokenkeeperError(error, code)) return error;
    throw new Error(`expected ${code}, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const k of it) out.push(k);
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
