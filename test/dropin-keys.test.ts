// Drop-in keys can overlap neither each other nor the session manager's sessions, whatever key,
// authType or namespace a user or SDK passes; records written before 0.2 are still read.
import { describe, expect, it } from 'vitest';
import { podioSessionStore } from '../src/exports/podio.js';
import { sharetribeTokenStore } from '../src/exports/sharetribe.js';
import { memoryStore, SessionManager } from '../src/index.js';

const podioGet = (s: ReturnType<typeof podioSessionStore>, authType: string) => new Promise((r) => s.get(authType, r));
const podioSet = (s: ReturnType<typeof podioSessionStore>, auth: object, authType: string) =>
  new Promise((r) => s.set(auth as never, authType, r));

describe('drop-in keys', () => {
  it("a Sharetribe key that looks like a session key never reaches the manager's session", async () => {
    const store = memoryStore();
    const manager = new SessionManager({ store, tokenEndpoint: 'https://as.example/token', client: { clientId: 'c' } });
    await manager.adopt('x', { access_token: 'session-x', expires_in: 3600 });
    const sharetribe = sharetribeTokenStore(store, { namespace: 'tokenkeeper', key: 's:x' });
    expect(await sharetribe.getToken()).toBeNull();
    await sharetribe.setToken({ access_token: 'sharetribe', token_type: 'bearer' } as never);
    await sharetribe.removeToken();
    expect((await manager.get('x'))?.tokens.accessToken).toBe('session-x');
    const ids: string[] = [];
    for await (const id of manager.sessionIds()) ids.push(id);
    expect(ids).toEqual(['x']);
  });

  it('two Podio stores whose key and authType split differently never share a record', async () => {
    const store = memoryStore();
    const a = podioSessionStore(store, { key: 'a:server' });
    const b = podioSessionStore(store, { key: 'a' });
    await podioSet(a, { accessToken: 'first', refreshToken: 'r1', expiresIn: 100 }, 'client');
    await podioSet(b, { accessToken: 'second', refreshToken: 'r2', expiresIn: 100 }, 'server:client');
    expect((await podioGet(a, 'client')) as { accessToken: string }).toMatchObject({ accessToken: 'first' });
    expect((await podioGet(b, 'server:client')) as { accessToken: string }).toMatchObject({ accessToken: 'second' });
  });

  it('Podio, Sharetribe and sessions sharing one namespace stay apart', async () => {
    const store = memoryStore();
    const podio = podioSessionStore(store, { namespace: 'app' });
    const sharetribe = sharetribeTokenStore(store, { namespace: 'app', key: 'client' });
    await podioSet(podio, { accessToken: 'podio', refreshToken: 'r', expiresIn: 100 }, 'client');
    await sharetribe.setToken({ access_token: 'sharetribe', token_type: 'bearer' } as never);
    expect((await podioGet(podio, 'client')) as { accessToken: string }).toMatchObject({ accessToken: 'podio' });
    expect((await sharetribe.getToken())?.access_token).toBe('sharetribe');
  });

  it('still reads records written under the keys of before 0.2, and moves them on the next write', async () => {
    const store = memoryStore();
    await store.set('sharetribe:token', {
      format: 'sharetribe/1',
      token: { access_token: 'old', token_type: 'bearer' },
    });
    const sharetribe = sharetribeTokenStore(store);
    expect((await sharetribe.getToken())?.access_token).toBe('old');
    await sharetribe.setToken({ access_token: 'new', token_type: 'bearer' } as never);
    expect(await store.get('sharetribe:token')).toBeUndefined();
    expect((await store.get('sharetribe:t:token'))?.value.token).toMatchObject({ access_token: 'new' });

    await store.set('podio:server', { format: 'podio-js/1', accessToken: 'old', refreshToken: 'r', expiresIn: 100 });
    const podio = podioSessionStore(store);
    expect((await podioGet(podio, 'server')) as { accessToken: string }).toMatchObject({ accessToken: 'old' });
    await podioSet(podio, { accessToken: 'new', refreshToken: 'r2', expiresIn: 100 }, 'server');
    expect(await store.get('podio:server')).toBeUndefined();
    expect((await podioGet(podio, 'server')) as { accessToken: string }).toMatchObject({ accessToken: 'new' });
  });
});
