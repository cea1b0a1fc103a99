import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharetribe from 'sharetribe-flex-integration-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import {
  importSharetribeTokenFile,
  sharetribeFileStore,
  sharetribeMemoryStore,
  sharetribeSdkTokenFile,
  sharetribeTokenStore,
} from '../src/exports/sharetribe.js';
import { memoryStore, type Store } from '../src/index.js';
import { runChild } from './helpers/child.js';
import { rejection } from './helpers/errors.js';
import { startFakeSharetribe } from './helpers/fake-sharetribe.js';

// Inside the real sharetribe-flex-integration-sdk 1.14.1, against a loopback fake of its APIs.
let api: Awaited<ReturnType<typeof startFakeSharetribe>>;
beforeAll(async () => {
  api = await startFakeSharetribe();
});
afterAll(() => api.close());

const sdkOn = (tokenStore: unknown) =>
  sharetribe.createInstance({
    clientId: api.clientId,
    clientSecret: api.clientSecret,
    baseUrl: api.baseUrl,
    tokenStore,
  });
const freshDir = () => join(mkdtempSync(join(tmpdir(), 'tk-st-')), 'store');

describe('sharetribeTokenStore inside the Sharetribe integration SDK', () => {
  it('authenticates once; a new process reuses the stored token without authenticating', async () => {
    const dir = freshDir();
    const store = fileStore({ path: dir });
    const before = api.counts.clientCredentials;
    expect((await sdkOn(sharetribeTokenStore(store)).marketplace.show()).status).toBe(200);
    expect(api.counts.clientCredentials).toBe(before + 1);
    const stored = (await store.get('sharetribe:t:token'))?.value.token as Record<string, unknown>;
    expect(stored).toMatchObject({ token_type: 'bearer', scope: 'integ' });
    const child = await runChild('sharetribe-worker.ts', [dir, api.baseUrl, api.clientId, api.clientSecret]);
    expect(JSON.parse(child.stdout)).toEqual({ status: 200 });
    expect(api.counts.clientCredentials).toBe(before + 1);
  }, 30_000);

  it('keeps the refreshed token after a 401', async () => {
    const store = memoryStore();
    const sdk = sdkOn(sharetribeTokenStore(store));
    await sdk.marketplace.show();
    const first = (await store.get('sharetribe:t:token'))?.value.token as {
      access_token: string;
      refresh_token: string;
    };
    api.expire(first.access_token);
    const refreshes = api.counts.refresh;
    expect((await sdk.marketplace.show()).status).toBe(200);
    expect(api.counts.refresh).toBe(refreshes + 1);
    const now = (await store.get('sharetribe:t:token'))?.value.token as { access_token: string; refresh_token: string };
    expect(now.access_token).not.toBe(first.access_token);
    expect(now.refresh_token).not.toBe(first.refresh_token);
  });

  it('leaves nothing behind after revoke', async () => {
    const store = memoryStore();
    const sdk = sdkOn(sharetribeTokenStore(store));
    await sdk.marketplace.show();
    await sdk.revoke();
    expect(await store.get('sharetribe:t:token')).toBeUndefined();
    const keys: string[] = [];
    for await (const k of store.keys()) keys.push(k);
    expect(keys).toEqual([]);
  });

  it('works with its methods detached from the object, as the SDK calls them', async () => {
    const { getToken, setToken, removeToken } = sharetribeTokenStore(memoryStore());
    await setToken({ access_token: 'a', token_type: 'bearer' });
    expect(await getToken()).toEqual({ access_token: 'a', token_type: 'bearer' });
    await removeToken();
    expect(await getToken()).toBeNull();
  });

  it('offers SDK-shaped memory and file stores', async () => {
    const mem = sharetribeMemoryStore();
    expect((await sdkOn(mem).marketplace.show()).status).toBe(200);
    expect((await mem.getToken())?.token_type).toBe('bearer');
    const xdg = mkdtempSync(join(tmpdir(), 'tk-st-xdg-'));
    const old = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = xdg;
    try {
      const file = sharetribeFileStore();
      expect((await sdkOn(file).marketplace.show()).status).toBe(200);
      expect(
        (await fileStore({ path: join(xdg, 'tokenkeeper', 'sharetribe') }).get('sharetribe:t:token'))?.value.format,
      ).toBe('sharetribe/1');
    } finally {
      if (old === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = old;
    }
  });

  it('imports the token file of the SDK own file store, and refuses a truncated one', async () => {
    expect(sharetribeSdkTokenFile({}, 'linux', '/home/me')).toBe(
      '/home/me/.config/flex-integration-sdk-nodejs/file-store-token.json',
    );
    expect(sharetribeSdkTokenFile({}, 'darwin', '/Users/me')).toBe(
      '/Users/me/.config/flex-integration-sdk/file-store-token.json',
    );
    const dir = mkdtempSync(join(tmpdir(), 'tk-st-import-'));
    const target = sharetribeTokenStore(memoryStore());
    expect(await importSharetribeTokenFile(target, join(dir, 'missing.json'))).toBe(false);
    const good = join(dir, 'file-store-token.json');
    writeFileSync(good, JSON.stringify({ access_token: 'x', token_type: 'bearer', refresh_token: 'r' }));
    expect(await importSharetribeTokenFile(target, good)).toBe(true);
    expect(await target.getToken()).toEqual({ access_token: 'x', token_type: 'bearer', refresh_token: 'r' });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"access_token":"x","tok');
    const err = await rejection(importSharetribeTokenFile(sharetribeTokenStore(memoryStore()), bad));
    expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(err.message).toContain(bad);
  });

  it('makes a failing store an SDK error, with nothing stored corrupted', async () => {
    const inner = memoryStore();
    let failing = false;
    const flaky: Store = {
      ...inner,
      set: (k, v, o) => (failing ? Promise.reject(new Error('disk full')) : inner.set(k, v, o)),
    };
    const sdk = sdkOn(sharetribeTokenStore(flaky));
    await sdk.marketplace.show();
    const kept = await inner.get('sharetribe:t:token');
    failing = true;
    api.expire((kept!.value.token as { access_token: string }).access_token);
    await expect(sdk.marketplace.show()).rejects.toBeDefined();
    expect((await inner.get('sharetribe:t:token'))?.value).toEqual(kept?.value);
  });

  it('refuses bad input', async () => {
    expect(() => sharetribeTokenStore(memoryStore(), { namespace: 'a:b' })).toThrow(/namespace/);
    const store = sharetribeTokenStore(memoryStore());
    expect((await rejection(store.setToken('token' as never))).code).toBe('TOKENKEEPER_INVALID_TOKEN_RESPONSE');
    const raw = memoryStore();
    await raw.set('sharetribe:token', { something: 'else' });
    expect((await rejection(sharetribeTokenStore(raw).getToken())).code).toBe('TOKENKEEPER_CORRUPT_RECORD');
  });
});
