/**
 * Page side of test/browser/stores.browser.test.ts: runs the store conformance suite, and the
 * bad-input cases, inside Chromium. Bundled from source by esbuild (test/helpers/browser.ts).
 */
import {
  browserEncryptionKey,
  encryptedStore,
  indexedDbStore,
  isTokenkeeperError,
  type Store,
  webStorageStore,
} from '../../../src/index.js';
import { defineStoreConformance } from '../../../src/testing/suite.js';
import { runTests } from './runner.js';

let n = 0;
const unique = () => `t${Date.now().toString(36)}${(n++).toString(36)}`;

const makers: Record<string, () => Promise<Store> | Store> = {
  indexeddb: () => indexedDbStore({ name: unique() }),
  'indexeddb, no Web Locks': () => indexedDbStore({ name: unique(), webLocks: false }),
  'indexeddb, encrypted with a non-extractable key': async () =>
    encryptedStore(indexedDbStore({ name: unique() }), await browserEncryptionKey({ database: unique() })),
  localStorage: () => webStorageStore(localStorage, { prefix: unique() }),
  'localStorage, no Web Locks': () => webStorageStore(localStorage, { prefix: unique(), webLocks: false }),
  sessionStorage: () => webStorageStore(sessionStorage, { prefix: unique() }),
};

async function conformance(which: string, listCount = 2000, filter?: string) {
  const make = makers[which];
  if (!make) throw new Error(`no store ${which}`);
  return runTests((api) => defineStoreConformance(api, which, make, { listCount }), filter);
}

/** The runner must be able to fail: a suite with one passing and one failing test. */
async function selfTest() {
  return runTests(({ it, expect }) => {
    it('passes', async () => expect({ a: [1, { b: undefined }] }).toEqual({ a: [1, {}] }));
    it('fails', async () => expect({ a: 1 }).toEqual({ a: 2 }));
  });
}

/** What a call threw, as plain data for the test to assert on. */
async function outcome(run: () => Promise<unknown>) {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    const e = error as { name?: string; code?: string; key?: string; message?: string };
    return { ok: false, name: e.name, code: e.code, key: e.key, message: e.message, typed: isTokenkeeperError(error) };
  }
}

async function garbageEntry() {
  const prefix = unique();
  const store = webStorageStore(localStorage, { prefix });
  await store.set('alice', { who: 'alice' });
  await store.set('bob', { who: 'bob' });
  localStorage.setItem(`${prefix}:r:alice`, '{"v":1,"r":{"who":"al'); // edited by hand, cut short
  localStorage.setItem(`${prefix}:r:carol`, 'not json at all');
  const result = {
    read: await outcome(() => store.get('alice')),
    readOther: await outcome(() => store.get('carol')),
    bob: await outcome(() => store.get('bob')),
    listed: await outcome(async () => {
      const keys: string[] = [];
      for await (const k of store.keys()) keys.push(k);
      return keys.sort();
    }),
    overwrite: await outcome(() => store.set('alice', { who: 'alice again' })),
    after: await outcome(() => store.get('alice')),
  };
  await store.close();
  return result;
}

async function quota() {
  const prefix = unique();
  const store = webStorageStore(localStorage, { prefix });
  await store.set('alice', { who: 'alice', n: 1 });
  await store.set('bob', { who: 'bob' });
  // Fill the origin's localStorage (about 5 MB) with the rest of the "app"'s data.
  const chunk = 'x'.repeat(256 * 1024);
  let filled = 0;
  for (let i = 0; i < 100; i++) {
    try {
      localStorage.setItem(`filler:${i}`, chunk);
      filled++;
    } catch {
      break;
    }
  }
  for (let size = 16 * 1024; size >= 1; size = Math.floor(size / 2)) {
    for (let i = 0; i < 64; i++) {
      try {
        localStorage.setItem(`filler:s${size}:${i}`, 'x'.repeat(size));
      } catch {
        break;
      }
    }
  }
  const big = { who: 'alice', n: 2, blob: 'y'.repeat(64 * 1024) };
  const result = {
    filled,
    write: await outcome(() => store.set('alice', big)),
    newKey: await outcome(() => store.set('dave', big)),
    alice: await outcome(() => store.get('alice')),
    bob: await outcome(() => store.get('bob')),
  };
  for (let i = localStorage.length - 1; i >= 0; i--) {
    const k = localStorage.key(i);
    if (k?.startsWith('filler:')) localStorage.removeItem(k);
  }
  const retry = await outcome(() => store.set('alice', big));
  await store.close();
  return { ...result, retry };
}

/** In a frame whose storage is blocked (a sandbox without allow-same-origin). */
async function disabled() {
  return {
    localStorageStore: await outcome(async () => webStorageStore()),
    indexedDbStore: await outcome(async () => {
      const store = indexedDbStore();
      return store.set('k', { a: 1 });
    }),
    encryptionKey: await outcome(() => browserEncryptionKey()),
  };
}

Object.assign(globalThis, { storesPage: { conformance, selfTest, garbageEntry, quota, disabled } });
