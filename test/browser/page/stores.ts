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

/** Where each store keeps its data, for planting corrupt records under it. */
const homes = new WeakMap<Store, { idb: string } | { prefix: string; area: Storage }>();
const idb = (options: { webLocks?: boolean } = {}) => {
  const name = unique();
  const store = indexedDbStore({ name, ...options });
  homes.set(store, { idb: name });
  return store;
};
const local = (options: { webLocks?: boolean } = {}, area: Storage = localStorage) => {
  const prefix = unique();
  const store = webStorageStore(area, { prefix, ...options });
  homes.set(store, { prefix, area });
  return store;
};

/** Plants what the store cannot read as its record: a row or entry edited by hand. */
async function corrupt(store: Store, key: string): Promise<void> {
  const home = homes.get(store);
  if (home === undefined) throw new Error('no home known for this store');
  if ('prefix' in home) {
    home.area.setItem(`${home.prefix}:r:${key}`, '{"v":');
    return;
  }
  await store.get('any'); // the store creates its database on first use
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const open = indexedDB.open(home.idb);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  await new Promise<void>((resolve, reject) => {
    const tx = db.transaction('records', 'readwrite');
    tx.objectStore('records').put({ k: key, value: 'not json', version: 1, expires_at: null }, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

const makers: Record<string, () => Promise<Store> | Store> = {
  indexeddb: () => idb(),
  'indexeddb, no Web Locks': () => idb({ webLocks: false }),
  'indexeddb, encrypted with a non-extractable key': async () => {
    const inner = idb();
    const store = encryptedStore(inner, await browserEncryptionKey({ database: unique() }));
    homes.set(store, homes.get(inner) as { idb: string });
    return store;
  },
  localStorage: () => local(),
  'localStorage, no Web Locks': () => local({ webLocks: false }),
  sessionStorage: () => local({}, sessionStorage),
};

async function conformance(which: string, listCount = 2000, filter?: string) {
  const make = makers[which];
  if (!make) throw new Error(`no store ${which}`);
  return runTests((api) => defineStoreConformance(api, which, make, { listCount, corrupt }), filter);
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
    removed: await outcome(() => store.delete('alice')),
    after: await outcome(async () => {
      await store.set('alice', { who: 'alice again' });
      return store.get('alice');
    }),
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
