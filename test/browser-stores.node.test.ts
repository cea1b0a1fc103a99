// What the browser stores say when they are used where they cannot work, or misused. Their
// behaviour in a browser is tested in Chromium (test/browser).
import { describe, expect, it } from 'vitest';
import { browserEncryptionKey, indexedDbStore, webStorageStore } from '../src/index.js';
import { rejection, thrown } from './helpers/errors.js';
import { mapStorage } from './helpers/map-storage.js';

describe('browser stores outside a browser', () => {
  it('indexedDbStore with no IndexedDB is TOKENKEEPER_STORE_UNAVAILABLE, saying what to use instead', () => {
    const e = thrown(() => indexedDbStore());
    expect(e.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(e.message).toContain('fileStore');
  });

  it('webStorageStore with no localStorage is TOKENKEEPER_STORE_UNAVAILABLE', () => {
    const e = thrown(() => webStorageStore());
    expect(e.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(e.message).toContain('localStorage');
  });

  it('webLocks: true where there are no Web Locks is refused up front', () => {
    expect(thrown(() => webStorageStore(mapStorage(), { webLocks: true })).code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
  });

  it('without Web Locks a web storage store says its lock covers this realm only', async () => {
    const store = webStorageStore(mapStorage());
    expect(store.capabilities.crossProcessLock).toBe(false);
    const v = await store.set('k', { a: 1 });
    expect(await store.get('k')).toEqual({ value: { a: 1 }, version: v });
    await store.close();
  });

  it('browserEncryptionKey with no IndexedDB is TOKENKEEPER_STORE_UNAVAILABLE', async () => {
    expect((await rejection(browserEncryptionKey())).code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
  });
});

describe('bad arguments to the browser stores', () => {
  const fakeIdb = {} as IDBFactory; // never opened: the arguments are checked first
  it.each([
    ['a string as options', () => indexedDbStore('db' as never)],
    ['an empty name', () => indexedDbStore({ name: '', indexedDB: fakeIdb })],
    ['a numeric name', () => indexedDbStore({ name: 7 as never, indexedDB: fakeIdb })],
    ['a plain object as storage', () => webStorageStore({ storage: {} as never })],
    ['null options', () => webStorageStore(mapStorage(), null as never)],
    ['a prefix with a colon', () => webStorageStore(mapStorage(), { prefix: 'a:b' })],
    ['an empty prefix', () => webStorageStore(mapStorage(), { prefix: '' })],
  ])('refuses %s with TOKENKEEPER_INVALID_ARGUMENT', (_label, make) => {
    expect(thrown(make).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
  });

  it.each([
    ['an empty key id', { id: '' }],
    ['a numeric database', { database: 3 as never }],
  ])('browserEncryptionKey refuses %s', async (_label, options) => {
    expect((await rejection(browserEncryptionKey(options))).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
  });
});
