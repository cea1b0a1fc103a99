import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as solid3 from '@inrupt/solid-client-authn-node';
import * as solid4 from 'solid-authn-node-4';
import * as solid5 from 'solid-authn-node-5';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import { redisStore } from '../src/exports/redis.js';
import {
  clearSessionsFromStore,
  getSessionIdsFromStore,
  SOLID_SESSION_INDEX,
  solidStorage,
} from '../src/exports/solid.js';
import { memoryStore, type Store } from '../src/index.js';
import { runChild } from './helpers/child.js';
import { rejection } from './helpers/errors.js';
import { startFakeSolidOp } from './helpers/fake-solid-op.js';
import { deleteRedisPrefixes, REDIS_URL, runId } from './helpers/services.js';

// Inside the real @inrupt/solid-client-authn-node, every version that runs on Node 20 (5.0.0
// declares Node 22 but runs), against a loopback OpenID provider.
const SDKS = [
  ['3.1.1', '@inrupt/solid-client-authn-node', solid3],
  ['4.0.0', 'solid-authn-node-4', solid4],
  ['5.0.0', 'solid-authn-node-5', solid5],
] as const;
const redisPrefixes: string[] = [];
afterAll(() => deleteRedisPrefixes(redisPrefixes));
let op: Awaited<ReturnType<typeof startFakeSolidOp>>;
beforeAll(async () => {
  op = await startFakeSolidOp();
});
afterAll(() => op.close());

const freshDir = () => join(mkdtempSync(join(tmpdir(), 'tk-solid-')), 'store');
for (const [version, sdkPackage, sdk] of SDKS) {
  const { clearSessionFromStorageAll, getSessionIdFromStorageAll, Session } = sdk as typeof solid3;
  const workerConfig = (dir: string) =>
    JSON.stringify({
      sdk: sdkPackage,
      store: { kind: 'file', path: dir },
      issuer: op.issuer,
      clientId: op.clientId,
      clientSecret: op.clientSecret,
    });
  const login = async (storage: ReturnType<typeof solidStorage>, webid?: string) => {
    const session = new Session({ storage });
    await session.login({
      oidcIssuer: op.issuer,
      clientId: op.clientId,
      clientSecret: op.clientSecret,
      refreshToken: op.mintRefreshToken(webid),
      tokenType: 'Bearer',
    });
    return session;
  };

  describe(`solidStorage inside @inrupt/solid-client-authn-node ${version}`, () => {
    it('logs in once; a new process restores the session, and the rotated refresh token is what the store holds', async () => {
      const dir = freshDir();
      const session = await login(solidStorage(fileStore({ path: dir })));
      expect(session.info.isLoggedIn).toBe(true);
      const id = session.info.sessionId;
      const before = { ...op.counts };
      const first = JSON.parse((await runChild('solid-worker.ts', ['restore', workerConfig(dir), id])).stdout);
      expect(first).toEqual({ loggedIn: true, webId: 'https://pod.example/alice#me' });
      // The restore refreshed with the stored token; a second process can only restore if the
      // rotated token reached the store.
      const second = JSON.parse((await runChild('solid-worker.ts', ['restore', workerConfig(dir), id])).stdout);
      expect(second.loggedIn).toBe(true);
      expect(op.counts.refresh - before.refresh).toBe(2);
      expect(op.counts.invalidGrant).toBe(before.invalidGrant);
    }, 30_000);

    it('loses no session id when 8 logins happen at once in two processes', async () => {
      const dir = freshDir();
      const tokens = Array.from({ length: 8 }, (_, i) => op.mintRefreshToken(`https://pod.example/u${i}#me`));
      const [a, b] = await Promise.all([
        runChild('solid-worker.ts', ['login', workerConfig(dir), ...tokens.slice(0, 4)]),
        runChild('solid-worker.ts', ['login', workerConfig(dir), ...tokens.slice(4)]),
      ]);
      const ids = [...JSON.parse(a.stdout), ...JSON.parse(b.stdout)];
      expect(new Set(ids).size).toBe(8);
      const listed = await getSessionIdFromStorageAll(solidStorage(fileStore({ path: dir })));
      expect([...listed].sort()).toEqual([...ids].sort());
    }, 30_000);

    it('removes a session from the index and the store on logout, and clears all', async () => {
      const store = memoryStore();
      const storage = solidStorage(store);
      const s1 = await login(storage);
      const s2 = await login(storage);
      await s1.logout();
      expect(await getSessionIdFromStorageAll(solidStorage(store))).toEqual([s2.info.sessionId]);
      expect(await storage.get(`solidClientAuthenticationUser:${s1.info.sessionId}`)).toBeUndefined();
      await clearSessionFromStorageAll(storage);
      expect(await getSessionIdFromStorageAll(solidStorage(store))).toEqual([]);
      const left: string[] = [];
      for await (const k of store.keys('solid:idx:')) left.push(k);
      expect(left).toEqual([]);
    });

    for (const kind of ['file', 'Redis'] as const) {
      const storeOf = (): Store => {
        if (kind === 'file') return fileStore({ path: freshDir() });
        const prefix = `${runId()}:`;
        redisPrefixes.push(prefix);
        return redisStore({ url: REDIS_URL, prefix });
      };
      it(`${kind} store: a session id used again (re-login after logout, an id the app chose) is listed and cleared`, async () => {
        const store = storeOf();
        const storage = solidStorage(store);
        const relogin = async (id: string) => {
          const session = new Session({ storage }, id);
          await session.login({
            oidcIssuer: op.issuer,
            clientId: op.clientId,
            clientSecret: op.clientSecret,
            refreshToken: op.mintRefreshToken(),
            tokenType: 'Bearer',
          });
          return session;
        };
        const first = await relogin('app-chosen-id');
        expect(first.info.sessionId).toBe('app-chosen-id');
        expect(await getSessionIdFromStorageAll(storage)).toEqual(['app-chosen-id']); // this object has now seen it
        await first.logout();
        expect(await getSessionIdFromStorageAll(storage)).toEqual([]);
        await relogin('app-chosen-id'); // the same id again, through the same storage object
        expect(await getSessionIdFromStorageAll(storage)).toEqual(['app-chosen-id']);
        expect(await getSessionIdFromStorageAll(solidStorage(store))).toEqual(['app-chosen-id']);
        await relogin('app-chosen-id'); // and once more without a logout
        await clearSessionFromStorageAll(storage);
        // Nothing of the session is left behind: no index entry, no record with its refresh token
        // or client secret (the SDK's cached issuer metadata may stay: it holds no secret).
        const left: string[] = [];
        for await (const k of store.keys('solid:')) if (!k.startsWith('solid:v:issuerConfig:')) left.push(k);
        expect(left).toEqual([]);
        await store.close();
      }, 30_000);
    }

    it('streams session ids and clears sessions from the store', async () => {
      const store = memoryStore();
      const storage = solidStorage(store);
      const ids = [(await login(storage)).info.sessionId, (await login(storage)).info.sessionId];
      const listed: string[] = [];
      for await (const id of getSessionIdsFromStore(storage)) listed.push(id);
      expect(listed.sort()).toEqual(ids.sort());
      expect(await clearSessionsFromStore(storage)).toBe(2);
      expect(await getSessionIdFromStorageAll(solidStorage(store))).toEqual([]);
    });

    it('encrypts what the SDK stores in clear (refresh token, client secret)', async () => {
      const store = memoryStore();
      const storage = solidStorage(store, { encryption: { keys: { k: new Uint8Array(32).fill(9) }, current: 'k' } });
      const session = await login(storage);
      const raw = await store.get(`solid:v:solidClientAuthenticationUser:${session.info.sessionId}`);
      expect(JSON.stringify(raw?.value)).not.toContain(op.clientSecret);
      expect(JSON.stringify(raw?.value)).toContain('A256GCM');
      expect(await storage.get(`solidClientAuthenticationUser:${session.info.sessionId}`)).toContain(op.clientSecret);
    });

    it('makes a failing store a login error, with nothing stored corrupted', async () => {
      const inner = memoryStore();
      const kept = await login(solidStorage(inner));
      const failing: Store = { ...inner, set: () => Promise.reject(new Error('disk full')) };
      await expect(login(solidStorage(failing))).rejects.toThrow(/disk full/);
      expect(await getSessionIdFromStorageAll(solidStorage(inner))).toEqual([kept.info.sessionId]);
      expect(await solidStorage(inner).get(`solidClientAuthenticationUser:${kept.info.sessionId}`)).toContain(
        op.clientId,
      );
    });

    it('reads missing keys as undefined, never null', async () => {
      const storage = solidStorage(memoryStore());
      expect(await storage.get('nothing:here')).toBeUndefined();
      expect(await storage.get(SOLID_SESSION_INDEX)).toBe('[]');
    });

    it('caches repeated reads of one key, and sees its own writes at once', async () => {
      const inner = memoryStore();
      let reads = 0;
      const counting = {
        ...inner,
        get: (k: string) => {
          reads++;
          return inner.get(k);
        },
      };
      const storage = solidStorage(counting);
      await storage.set('k', 'v1');
      for (let i = 0; i < 50; i++) expect(await storage.get('k')).toBe('v1');
      expect(reads).toBe(0);
      await storage.set('k', 'v2');
      expect(await storage.get('k')).toBe('v2');
    });

    it('refuses bad input', async () => {
      expect(() => solidStorage(memoryStore(), { namespace: 'a:b' })).toThrow(/namespace/);
      expect(() => solidStorage(memoryStore(), { cacheMs: -1 })).toThrow(/cacheMs/);
      const storage = solidStorage(memoryStore());
      expect((await rejection(storage.set(SOLID_SESSION_INDEX, '{"not":"an array"}'))).code).toBe(
        'TOKENKEEPER_INVALID_RECORD',
      );
      expect((await rejection(storage.set('k', 42 as never))).code).toBe('TOKENKEEPER_INVALID_RECORD');
    });
  });
}
