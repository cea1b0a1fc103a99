import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Podio from 'podio-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import {
  fromPodioPhpRecord,
  importPodioSessionFile,
  podioSessionStore,
  toPodioPhpRecord,
} from '../src/exports/podio.js';
import { encryptedStore, memoryStore, type Store } from '../src/index.js';
import * as childHelpers from './helpers/child.js';
import { runChild } from './helpers/child.js';
import { rejection } from './helpers/errors.js';
import { startFakePodio } from './helpers/fake-podio.js';

// Inside the real podio-js 1.6.1, against a loopback fake of the Podio API.
let api: Awaited<ReturnType<typeof startFakePodio>>;
beforeAll(async () => {
  api = await startFakePodio();
});
afterAll(() => api.close());

const newPodio = (store: Store, key = 'app-42') =>
  new Podio.api(
    { authType: 'app', clientId: api.clientId, clientSecret: api.clientSecret },
    { apiURL: api.apiURL, sessionStore: podioSessionStore(store, { key }) },
  );
// As Podio documents: check isAuthenticated() first, authenticate if it rejects. (podio-js reads
// the store in its constructor without waiting; authenticating before that read answers lets
// the late read replace the new tokens in the SDK's memory. The store keeps them either way.)
const authenticate = async (podio: ReturnType<typeof newPodio>) => {
  await podio.isAuthenticated().catch(() => {});
  await new Promise<void>((resolve, reject) =>
    podio.authenticateWithApp(42, 'app-token', (e) => (e ? reject(e) : resolve())),
  );
};
const freshDir = () => join(mkdtempSync(join(tmpdir(), 'tk-podio-')), 'store');

describe('podioSessionStore inside podio-js', () => {
  it('stores the tokens of one authentication; a new process reuses them without authenticating', async () => {
    const dir = freshDir();
    const store = fileStore({ path: dir });
    const podio = newPodio(store);
    await authenticate(podio);
    const stored = await store.get('podio:u:app-42:app');
    expect(stored?.value).toMatchObject({
      accessToken: podio.authObject?.accessToken,
      expiresIn: 28800,
      ref: { type: 'app', id: 42 },
      scope: 'app:all',
    });
    expect(stored?.value.expiresAt).toBeGreaterThan(Date.now());
    const tokenRequests = api.counts.token;
    const child = await runChild('podio-worker.ts', [dir, api.apiURL, api.clientId, api.clientSecret]);
    expect(JSON.parse(child.stdout)).toEqual({ item_id: 7, title: 'An item' });
    expect(api.counts.token).toBe(tokenRequests);
  }, 30_000);

  it("writes podio-js's own refresh after a 401 through the store; a new process reuses it", async () => {
    const dir = freshDir();
    const store = fileStore({ path: dir });
    const podio = newPodio(store);
    await authenticate(podio);
    const first = podio.authObject?.accessToken as string;
    api.expire(first);
    expect(await podio.request('GET', '/item/1')).toEqual({ item_id: 1, title: 'An item' });
    const refreshed = (await store.get('podio:u:app-42:app'))?.value;
    expect(refreshed?.accessToken).not.toBe(first);
    expect(refreshed?.accessToken).toBe(podio.authObject?.accessToken);
    expect(api.counts.invalidGrant).toBe(0);
    // A new instance starts from the refreshed token.
    const again = newPodio(store);
    await again.isAuthenticated();
    expect(await again.request('GET', '/item/2')).toEqual({ item_id: 2, title: 'An item' });
    const tokenRequests = api.counts.token;
    const child = await runChild('podio-worker.ts', [dir, api.apiURL, api.clientId, api.clientSecret]);
    expect(JSON.parse(child.stdout)).toEqual({ item_id: 7, title: 'An item' });
    expect(api.counts.token).toBe(tokenRequests);
  }, 30_000);

  it('leaves nothing behind on sign-out', async () => {
    const store = memoryStore();
    const podio = newPodio(store);
    await authenticate(podio);
    podio._clearAuthentication();
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.get('podio:u:app-42:app')).toBeUndefined();
    await expect(newPodio(store).isAuthenticated()).rejects.toBeUndefined();
  });

  it('keeps auth types, keys and namespaces apart', async () => {
    const store = memoryStore();
    await authenticate(newPodio(store, 'app-42'));
    await expect(newPodio(store, 'app-43').isAuthenticated()).rejects.toBeUndefined();
    const keys: string[] = [];
    for await (const k of store.keys()) keys.push(k);
    expect(keys).toEqual(['podio:u:app-42:app']);
  });

  it('works through an encrypted store, with no token in clear', async () => {
    const inner = memoryStore();
    const store = encryptedStore(inner, { keys: { k: new Uint8Array(32).fill(5) }, current: 'k' });
    const podio = newPodio(store);
    await authenticate(podio);
    expect(JSON.stringify((await inner.get('podio:u:app-42:app'))?.value)).not.toContain(podio.authObject?.accessToken);
    const again = newPodio(store);
    await again.isAuthenticated();
    expect(await again.request('GET', '/item/3')).toEqual({ item_id: 3, title: 'An item' });
  });

  it('round-trips every field podio-js stores, exactly', async () => {
    const store = memoryStore();
    const session = podioSessionStore(store);
    const auth = {
      accessToken: 'a',
      refreshToken: 'r',
      expiresIn: 28800,
      ref: { type: 'user', id: 1 },
      transferToken: 't',
      scope: 's',
    };
    await new Promise((r) => session.set(auth, 'server', r));
    const back = await new Promise((r) => session.get('server', r));
    expect(back).toEqual(auth);
  });

  it('lets podio-js see a failing store as an error (on write) or no session (on read), never a hang', async () => {
    const broken: Store = {
      ...memoryStore(),
      get: async () => {
        throw new Error('disk on fire');
      },
      set: async () => {
        throw new Error('disk on fire');
      },
    };
    const errors: unknown[] = [];
    const session = podioSessionStore(broken, { onError: (e) => errors.push(e) });
    const podio = new Podio.api(
      { authType: 'app', clientId: api.clientId, clientSecret: api.clientSecret },
      { apiURL: api.apiURL, sessionStore: session },
    );
    await expect(podio.isAuthenticated()).rejects.toBeUndefined();
    const err = await new Promise((resolve) => podio.authenticateWithApp(42, 'app-token', resolve));
    expect(String(err)).toContain('disk on fire');
    expect(errors.length).toBeGreaterThanOrEqual(2);
  });

  it('reports a record it did not write and treats it as signed out', async () => {
    const store = memoryStore();
    await store.set('podio:server', { hello: 'world' });
    const errors: { code?: string }[] = [];
    const auth = await new Promise((r) =>
      podioSessionStore(store, { onError: (e) => errors.push(e as never) }).get('server', r),
    );
    expect(auth).toBeUndefined();
    expect(errors[0]?.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
  });

  it("imports a session saved by podio-js's example file store", async () => {
    const session = podioSessionStore(memoryStore());
    const auth = { accessToken: 'a', refreshToken: 'r', expiresIn: 100, ref: { type: 'user', id: 3 } };
    expect(await importPodioSessionFile(session, 'server', JSON.stringify(auth))).toBe(true);
    expect(await new Promise((r) => session.get('server', r))).toEqual(auth);
    expect(await importPodioSessionFile(session, 'server', '')).toBe(false);
    const err = await rejection(importPodioSessionFile(session, 'server', '{"accessTok'));
    expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
  });

  it('shares sessions with PHP services in podio-php shape (snake_case), inside podio-js', async () => {
    const store = memoryStore();
    const php = (s: Store) =>
      new Podio.api(
        { authType: 'app', clientId: api.clientId, clientSecret: api.clientSecret },
        { apiURL: api.apiURL, sessionStore: podioSessionStore(s, { key: 'app-42', format: 'php' }) },
      );
    const podio = php(store);
    await podio.isAuthenticated().catch(() => {});
    await new Promise((resolve, reject) =>
      podio.authenticateWithApp(42, 'app-token', (e) => (e ? reject(e) : resolve(0))),
    );
    const rec = (await store.get('podio:u:app-42:app'))?.value;
    expect(rec).toMatchObject({
      format: 'podio-php/1',
      access_token: podio.authObject?.accessToken,
      refresh_token: podio.authObject?.refreshToken,
      expires_in: 28800,
      ref: { type: 'app', id: 42 },
      scope: 'app:all',
    });
    expect(rec?.expires_at).toBeGreaterThan(Date.now() / 1000);
    // A record a PHP service wrote is read by podio-js.
    await store.set('podio:u:app-42:app', {
      format: 'podio-php/1',
      access_token: rec?.access_token as string,
      refresh_token: 'r',
      expires_in: 100,
    });
    const again = php(store);
    await again.isAuthenticated();
    expect(await again.request('GET', '/item/5')).toEqual({ item_id: 5, title: 'An item' });
    const auth = { accessToken: 'a', refreshToken: 'r', expiresIn: 5, ref: { type: 'user', id: 1 }, scope: 's' };
    expect(fromPodioPhpRecord(toPodioPhpRecord(auth))).toEqual(auth);
  });

  it('refuses bad options', () => {
    expect(() => podioSessionStore(memoryStore(), { format: 'ruby' as never })).toThrow(/format/);
    expect(() => podioSessionStore(memoryStore(), { namespace: 'a:b' })).toThrow(/namespace/);
    expect(() => podioSessionStore(memoryStore(), { key: '' })).toThrow(/key/);
  });
});

describe('podio-js fleets sharing one store', () => {
  const { startChild, waitForOutput } = childHelpers;

  /**
   * 4 processes, each started with the session as stored (its access token then expired), then
   * making one request: all at once, or one after the other (each still holding the old token).
   */
  async function fleet(mode: 'plain' | 'shared', order: 'together' | 'one by one') {
    const dir = freshDir();
    const store = fileStore({ path: dir });
    const podio = newPodio(store);
    await authenticate(podio);
    api.expire(podio.authObject?.accessToken as string);
    const before = { ...api.counts };
    const go = (i: number) => (order === 'together' ? `${dir}.go` : `${dir}.go.${i}`);
    const workers = Array.from({ length: 4 }, (_, i) =>
      startChild('podio-fleet-worker.ts', [dir, api.apiURL, api.clientId, api.clientSecret, mode, go(i)]),
    );
    await Promise.all(workers.map((w) => waitForOutput(w.child, 'ready')));
    const results = [];
    if (order === 'together') {
      writeFileSync(go(0), '');
      results.push(...(await Promise.all(workers.map((w) => w.done))));
    } else {
      for (const [i, w] of workers.entries()) {
        writeFileSync(go(i), '');
        results.push(await w.done);
      }
    }
    const outcomes = results.map((r) => JSON.parse(r.stdout.trim().split('\n').pop() as string));
    return { dir, store, outcomes, refreshes: api.counts.refresh - before.refresh };
  }

  it('without shareRefresh: processes holding the old token never delete the session another refreshed', async () => {
    const { dir, outcomes } = await fleet('plain', 'one by one');
    // podio-js itself lets the later processes fail (they refresh with a spent token) ...
    expect(outcomes[0]).toEqual({ ok: true });
    // ... but the refreshed session stays in the store: a new process restores it, asking Podio nothing.
    const tokenRequests = api.counts.token;
    const child = await runChild('podio-worker.ts', [dir, api.apiURL, api.clientId, api.clientSecret]);
    expect(JSON.parse(child.stdout)).toMatchObject({ item_id: 7 });
    expect(api.counts.token).toBe(tokenRequests);
  }, 30_000);

  for (const order of ['together', 'one by one'] as const) {
    it(`with shareRefresh, requests ${order}: exactly one refresh and no failed request`, async () => {
      const { outcomes, refreshes } = await fleet('shared', order);
      expect(outcomes).toEqual(Array.from({ length: 4 }, () => ({ ok: true })));
      expect(refreshes).toBe(1);
    }, 30_000);
  }

  it('two concurrent requests in one instance: without shareRefresh the second fails, with it both succeed once', async () => {
    for (const shared of [false, true]) {
      const store = memoryStore();
      const sessionStore = podioSessionStore(store, { key: 'app-42' });
      const podio = new Podio.api(
        { authType: 'app', clientId: api.clientId, clientSecret: api.clientSecret },
        { apiURL: api.apiURL, sessionStore },
      );
      if (shared) sessionStore.shareRefresh(podio);
      await authenticate(podio);
      api.expire(podio.authObject?.accessToken as string);
      const before = api.counts.refresh;
      const results = await Promise.allSettled([podio.request('GET', '/item/1'), podio.request('GET', '/item/2')]);
      if (shared) {
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
        expect(api.counts.refresh - before).toBe(1);
      } else {
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
        expect(String((results[1] as PromiseRejectedResult).reason?.name)).toBe('PodioAuthorizationError');
        expect(api.counts.refresh - before).toBe(1);
      }
    }
  });

  it('a refresh slower than the lease: the heartbeat keeps the lock, so one refresh, and both instances succeed', async () => {
    const store = fileStore({ path: freshDir() });
    const make = () => {
      const sessionStore = podioSessionStore(store, { key: 'app-42' });
      const podio = new Podio.api(
        { authType: 'app', clientId: api.clientId, clientSecret: api.clientSecret },
        { apiURL: api.apiURL, sessionStore },
      );
      return sessionStore.shareRefresh(podio, { leaseMs: 300 });
    };
    const first = make();
    await authenticate(first);
    const second = make();
    await second.isAuthenticated().catch(() => {}); // reads the stored session
    await new Promise((r) => setTimeout(r, 100));
    api.expire(first.authObject?.accessToken as string);
    api.slow.refreshMs = 1_200; // four leases
    const before = { ...api.counts };
    try {
      const results = await Promise.allSettled([first.request('GET', '/item/1'), second.request('GET', '/item/2')]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
      expect(api.counts.refresh - before.refresh).toBe(1);
      expect(api.counts.invalidGrant - before.invalidGrant).toBe(0);
    } finally {
      api.slow.refreshMs = 0;
    }
  }, 30_000);

  it('a lock lost before the refresh is sent: nothing is sent (TOKENKEEPER_LEASE_LOST), the session stays', async () => {
    const dir = freshDir();
    const inner = fileStore({ path: dir });
    let breakNextLock = false;
    // The file store, with its lock file taken away under the holder (another process broke it,
    // as it may once the holder stalled past its lease) while the record is read.
    const store: Store = {
      ...inner,
      async get(key) {
        const entry = await inner.get(key);
        if (breakNextLock) {
          breakNextLock = false;
          for (const name of readdirSync(dir)) if (name.endsWith('.lock')) rmSync(join(dir, name));
        }
        return entry;
      },
    };
    const errors: unknown[] = [];
    const sessionStore = podioSessionStore(store, { key: 'app-42', onError: (e) => errors.push(e) });
    const podio = sessionStore.shareRefresh(
      new Podio.api(
        { authType: 'app', clientId: api.clientId, clientSecret: api.clientSecret },
        { apiURL: api.apiURL, sessionStore },
      ),
    );
    await authenticate(podio);
    const snapshot = async () => {
      const out: Record<string, unknown> = {};
      for await (const k of inner.keys()) out[k] = (await inner.get(k))?.value;
      return out;
    };
    const stored = await snapshot();
    expect(Object.keys(stored)).toHaveLength(1);
    api.expire(podio.authObject?.accessToken as string);
    const before = api.counts.refresh;
    breakNextLock = true;
    await expect(podio.request('GET', '/item/1')).rejects.toBeDefined();
    expect(api.counts.refresh - before).toBe(0);
    expect(errors.map((e) => (e as { code?: string }).code)).toContain('TOKENKEEPER_LEASE_LOST');
    expect(await snapshot()).toEqual(stored); // the session stays as it was
    // podio-js retries the request even after a failed refresh (its transport does not return on
    // the error), which refreshes again, now under a lock that holds: let that end before the
    // fake API closes under it.
    for (let i = 0; i < 100 && api.counts.refresh === before; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
  }, 30_000);

  it('refuses shareRefresh on something that is not a podio-js instance', () => {
    expect(() => podioSessionStore(memoryStore()).shareRefresh({} as never)).toThrow(/podio-js instance/);
  });
});
