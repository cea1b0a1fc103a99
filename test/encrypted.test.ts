import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import { encryptedStore, isTokenkeeperError, memoryStore, type Store } from '../src/index.js';
import { rejection } from './helpers/errors.js';

const k1 = new Uint8Array(32).fill(1);
const k2 = Buffer.alloc(32, 2).toString('base64');

describe('encryptedStore', () => {
  it('stores no plaintext on disk', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tk-enc-')), 's');
    const store = encryptedStore(fileStore({ path: dir }), { keys: { k1 }, current: 'k1' });
    await store.set('user', { refreshToken: 'RT-very-secret' });
    const raw = readFileSync(join(dir, readdirSync(dir)[0] as string), 'utf8');
    expect(raw).not.toContain('RT-very-secret');
    expect(JSON.parse(raw).value).toMatchObject({ tk: 1, alg: 'A256GCM', kid: 'k1' });
    expect((await store.get('user'))?.value).toEqual({ refreshToken: 'RT-very-secret' });
  });

  it('reads old records after the current key changes, and writes with the new one', async () => {
    const inner = memoryStore();
    await encryptedStore(inner, { keys: { k1 }, current: 'k1' }).set('a', { v: 1 });
    const rotated = encryptedStore(inner, { keys: { k1, k2 }, current: 'k2' });
    expect((await rotated.get('a'))?.value).toEqual({ v: 1 });
    await rotated.set('a', { v: 2 });
    expect((await inner.get('a'))?.value.kid).toBe('k2');
    const err = await rejection(encryptedStore(inner, { keys: { k1 }, current: 'k1' }).get('a'));
    expect(err.code).toBe('TOKENKEEPER_DECRYPT_FAILED');
    expect(err.message).toContain('"k2"');
  });

  it('refuses a wrong key, naming its ID, without returning garbage', async () => {
    const inner = memoryStore();
    await encryptedStore(inner, { keys: { k1 }, current: 'k1' }).set('a', { v: 1 });
    const wrong = encryptedStore(inner, { keys: { k1: new Uint8Array(32).fill(9) }, current: 'k1' });
    const err = await rejection(wrong.get('a'));
    expect(err.code).toBe('TOKENKEEPER_DECRYPT_FAILED');
    expect(err.message).toContain('"k1"');
    expect(err.key).toBe('a');
  });

  it('detects tampered bytes and records moved to another key', async () => {
    const inner = memoryStore();
    const store = encryptedStore(inner, { keys: { k1 }, current: 'k1' });
    await store.set('victim', { token: 'v' });
    await store.set('other', { token: 'o' });
    const env = (await inner.get('victim'))?.value as Record<string, string>;
    const ct = env.ct as string;
    const flipped = (ct[5] === 'A' ? 'B' : 'A') as string;
    await inner.set('victim', { ...env, ct: ct.slice(0, 5) + flipped + ct.slice(6) });
    expect((await rejection(store.get('victim'))).code).toBe('TOKENKEEPER_DECRYPT_FAILED');
    await inner.set('moved', (await inner.get('other'))?.value as Record<string, string>);
    expect((await rejection(store.get('moved'))).code).toBe('TOKENKEEPER_DECRYPT_FAILED');
    expect((await store.get('other'))?.value).toEqual({ token: 'o' });
  });

  it('refuses plaintext records unless told to read them', async () => {
    const inner = memoryStore();
    await inner.set('old', { token: 'plain' });
    expect((await rejection(encryptedStore(inner, { keys: { k1 }, current: 'k1' }).get('old'))).code).toBe(
      'TOKENKEEPER_CORRUPT_RECORD',
    );
    const migrating = encryptedStore(inner, { keys: { k1 }, current: 'k1', readPlaintext: true });
    expect((await migrating.get('old'))?.value).toEqual({ token: 'plain' });
  });

  it('refuses bad key material without echoing it', () => {
    const attempts: unknown[] = [
      undefined,
      { keys: {}, current: 'k1' },
      { keys: { k1: new Uint8Array(16) }, current: 'k1' },
      { keys: { k1: 'c2hvcnQta2V5LXNlY3JldA==' }, current: 'k1' },
      { keys: { k1: 'not base64 at all!!' }, current: 'k1' },
      { keys: { k1 }, current: 'k9' },
      { keys: { '': k1 }, current: '' },
    ];
    for (const options of attempts) {
      let err: unknown;
      try {
        encryptedStore(memoryStore() as Store, options as never);
      } catch (e) {
        err = e;
      }
      expect(isTokenkeeperError(err, 'TOKENKEEPER_INVALID_ARGUMENT')).toBe(true);
      expect((err as Error).message).not.toContain('c2hvcnQta2V5LXNlY3JldA');
      expect((err as Error).message).not.toContain('not base64');
    }
  });

  it('accepts a non-extractable Web Crypto key', async () => {
    const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    const store = encryptedStore(memoryStore(), { keys: { web: key }, current: 'web' });
    await store.set('a', { v: 1 });
    expect((await store.get('a'))?.value).toEqual({ v: 1 });
  });
});
