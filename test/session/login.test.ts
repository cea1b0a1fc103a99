import { beforeEach, describe, expect, it } from 'vitest';
import { isTokenkeeperError, SessionManager, type SessionManagerOptions, type Store } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import type { FakeAuthServer } from '../helpers/fake-as.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

const fixture = useFakeAuthServer();
let as: FakeAuthServer;
let store: Store;
beforeEach(() => {
  as = fixture.as;
  store = fixture.store;
});
const options = fixture.options;

describe('login', () => {
  it('logs in with client credentials and stores the session under the grant name by default', async () => {
    const manager = new SessionManager(options());
    const session = await manager.login({ grant: 'client_credentials', scope: 'read' });
    expect(session.id).toBe('client_credentials');
    expect(as.isActive(await session.getAccessToken())).toBe(true);
    expect(session.tokens.scope).toBe('read');
    const ids: string[] = [];
    for await (const id of manager.sessionIds()) ids.push(id);
    expect(ids).toEqual(['client_credentials']);
    const raw = await store.get('tokenkeeper:s:client_credentials');
    expect(raw?.value.renewBy).toBe('client_credentials');
  });

  it('logs in with a password, and refuses bad credentials with a typed error', async () => {
    const manager = new SessionManager(options());
    const session = await manager.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    expect(session.id).toBe('password');
    expect(session.tokens.refreshToken).toMatch(/^rt-/);
    const err = await rejection(
      manager.login({ grant: 'password', username: 'alice', password: 'nope' }, { sessionId: 'bad' }),
    );
    expect(err.code).toBe('TOKENKEEPER_INVALID_GRANT');
    expect(err.message).toContain('invalid_grant');
    expect(err.message).not.toContain('nope');
    expect(await manager.get('bad')).toBeUndefined();
  });

  it('exchanges an authorization code and keeps extra response fields', async () => {
    const manager = new SessionManager(options());
    const session = await manager.login(
      {
        grant: 'authorization_code',
        code: 'good-code',
        redirectUri: 'http://127.0.0.1/callback',
        codeVerifier: 'v'.repeat(43),
      },
      { sessionId: 'user-42' },
    );
    expect(session.tokens.extra).toEqual({ ref: { type: 'user', id: 7 } });
    expect((await manager.get('user-42'))?.tokens.extra).toEqual({ ref: { type: 'user', id: 7 } });
  });

  it('logs in with a refresh token obtained elsewhere', async () => {
    const manager = new SessionManager(options());
    const { refresh_token } = as.issue();
    const session = await manager.login(
      { grant: 'refresh_token', refreshToken: refresh_token as string },
      { sessionId: 'x' },
    );
    expect(as.counts.refresh).toBe(1);
    expect(session.tokens.refreshToken).not.toBe(refresh_token);
  });

  it('reuses a stored session with reuse: true, across managers, making one token request', async () => {
    const managers = Array.from({ length: 5 }, () => new SessionManager(options()));
    const sessions = await Promise.all(
      managers.map((m) => m.login({ grant: 'client_credentials' }, { sessionId: 'svc', reuse: true })),
    );
    expect(as.counts.clientCredentials).toBe(1);
    const tokens = await Promise.all(sessions.map((s) => s.getAccessToken()));
    expect(new Set(tokens).size).toBe(1);
    // Without reuse, a login always asks.
    await managers[0]?.login({ grant: 'client_credentials' }, { sessionId: 'svc' });
    expect(as.counts.clientCredentials).toBe(2);
  });

  it('adopts a token response obtained elsewhere', async () => {
    const manager = new SessionManager(options());
    const response = as.issue();
    const session = await manager.adopt('adopted', response);
    expect(await session.getAccessToken()).toBe(response.access_token);
    expect(session.grant).toBe('adopt');
    expect(as.counts.refresh).toBe(0);
  });

  it('emits login events without tokens in them', async () => {
    const manager = new SessionManager(options());
    const seen: unknown[] = [];
    const off = manager.on('login', (e) => seen.push(e));
    await manager.login({ grant: 'client_credentials' }, { sessionId: 'e' });
    off();
    await manager.login({ grant: 'client_credentials' }, { sessionId: 'f' });
    expect(seen).toEqual([{ sessionId: 'e', grant: 'client_credentials' }]);
  });

  it('discovers the endpoints from the issuer', async () => {
    const manager = new SessionManager({
      store,
      issuer: as.issuer,
      client: { clientId: as.clientId, clientSecret: as.clientSecret },
    });
    const session = await manager.login({ grant: 'client_credentials' });
    expect(as.isActive(await session.getAccessToken())).toBe(true);
    expect((await session.logout()).revoked).toBe(true);
  });

  it('authenticates with client_secret_post when asked', async () => {
    const manager = new SessionManager(
      options({ client: { clientId: as.clientId, clientSecret: as.clientSecret, authMethod: 'client_secret_post' } }),
    );
    await expect(manager.login({ grant: 'client_credentials' })).resolves.toBeDefined();
  });
});

describe('bad input', () => {
  const construct = (o: unknown) => {
    try {
      new SessionManager(o as SessionManagerOptions);
    } catch (e) {
      return e;
    }
    return undefined;
  };

  it('refuses a missing client id', () => {
    for (const client of [undefined, {}, { clientId: '' }, { clientId: 42 }]) {
      const err = construct({ tokenEndpoint: as.tokenEndpoint, client });
      expect(isTokenkeeperError(err, 'TOKENKEEPER_INVALID_ARGUMENT')).toBe(true);
      expect((err as Error).message).toContain('clientId');
    }
  });

  it('refuses an issuer that is not a URL, and no endpoint at all', () => {
    const err = construct({ issuer: 'auth.example.com', client: { clientId: 'c' } });
    expect(isTokenkeeperError(err, 'TOKENKEEPER_INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(/issuer must be an absolute URL/);
    const none = construct({ client: { clientId: 'c' } });
    expect((none as Error).message).toMatch(/issuer .* or a tokenEndpoint/);
  });

  it('refuses plain http except on loopback, unless allowed', () => {
    const err = construct({ issuer: 'http://auth.example.com', client: { clientId: 'c' } });
    expect(isTokenkeeperError(err, 'TOKENKEEPER_INSECURE_ENDPOINT')).toBe(true);
    expect((err as Error).message).toContain('allowInsecureHttp');
    for (const ok of [
      'http://127.0.0.1:9/token',
      'http://localhost/token',
      'http://[::1]:8080/token',
      'http://127.5.6.7/t',
    ]) {
      expect(construct({ tokenEndpoint: ok, client: { clientId: 'c' } })).toBeUndefined();
    }
    expect(
      construct({ tokenEndpoint: 'http://10.0.0.5/token', client: { clientId: 'c' }, allowInsecureHttp: true }),
    ).toBeUndefined();
    expect(
      isTokenkeeperError(
        construct({ tokenEndpoint: 'ftp://x/token', client: { clientId: 'c' } }),
        'TOKENKEEPER_INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });

  it('refuses bad options', () => {
    const base = { tokenEndpoint: as.tokenEndpoint, client: { clientId: 'c' } };
    for (const extra of [
      { namespace: 'a:b' },
      { namespace: '' },
      { refreshSkewMs: -1 },
      { store: {} },
      { client: { clientId: 'c', authMethod: 'client_secret_basic' } },
      { client: { clientId: 'c', clientSecret: 's', authMethod: 'private_key_jwt' } },
      { retry: { attempts: 0 } },
    ]) {
      expect(
        isTokenkeeperError(construct({ ...base, ...extra }), 'TOKENKEEPER_INVALID_ARGUMENT'),
        JSON.stringify(extra),
      ).toBe(true);
    }
    expect(isTokenkeeperError(construct(null), 'TOKENKEEPER_INVALID_ARGUMENT')).toBe(true);
  });

  it('refuses an unknown grant and missing grant parameters', async () => {
    const manager = new SessionManager(options());
    const unknown = await rejection(manager.login({ grant: 'implicit' } as never));
    expect(unknown.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(unknown.message).toContain('unknown grant "implicit"');
    expect((await rejection(manager.login({ grant: 'password', username: 'alice' } as never))).message).toContain(
      'password',
    );
    expect((await rejection(manager.login({ grant: 'authorization_code', code: 'c' } as never))).message).toContain(
      'redirectUri',
    );
    expect((await rejection(manager.login(null as never))).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(as.counts.password + as.counts.authorizationCode).toBe(0);
  });

  it('refuses a token response without access_token, in adopt and from the server', async () => {
    const manager = new SessionManager(options());
    const err = await rejection(manager.adopt('x', { token_type: 'bearer', refresh_token: 'rt-secret' }));
    expect(err.code).toBe('TOKENKEEPER_INVALID_TOKEN_RESPONSE');
    expect(err.message).not.toContain('rt-secret');
    expect(await manager.get('x')).toBeUndefined();
    const broken = new SessionManager(
      options({
        fetch: async () =>
          new Response(JSON.stringify({ token_type: 'bearer' }), { headers: { 'content-type': 'application/json' } }),
      }),
    );
    const e2 = await rejection(broken.login({ grant: 'client_credentials' }));
    expect(e2.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(e2.message).toContain('access_token');
  });

  it('keeps session ids with path or glob characters inside their namespace', async () => {
    const a = new SessionManager(options({ namespace: 'app-a' }));
    const b = new SessionManager(options({ namespace: 'app-b' }));
    await b.adopt('victim', as.issue());
    for (const id of ['../app-b:s:victim', '*', 'app-b:s:*', '[a-z]', '?']) await a.adopt(id, as.issue());
    const ids: string[] = [];
    for await (const id of a.sessionIds()) ids.push(id);
    expect(ids.sort()).toEqual(['*', '../app-b:s:victim', '?', '[a-z]', 'app-b:s:*'].sort());
    const bIds: string[] = [];
    for await (const id of b.sessionIds()) bIds.push(id);
    expect(bIds).toEqual(['victim']);
    expect(await a.get('victim')).toBeUndefined();
    for (const bad of ['', 'a\u0000b', 'x'.repeat(5000), 42]) {
      expect((await rejection(a.get(bad as string))).code).toBe('TOKENKEEPER_INVALID_KEY');
    }
  });
});

describe('a store whose lock covers one process', () => {
  it('is reported once, through a warning event; the memory store is not', async () => {
    const { keyvStore } = await import('../../src/exports/keyv.js');
    const { default: Keyv } = await import('keyv');
    const warnings: { code: string }[] = [];
    const manager = new SessionManager(fixture.options({ store: keyvStore(new Keyv()) }));
    manager.on('warning', (w) => warnings.push(w));
    await manager.login({ grant: 'client_credentials' });
    await manager.login({ grant: 'client_credentials' });
    expect(warnings.map((w) => w.code)).toEqual(['TOKENKEEPER_SINGLE_PROCESS_LOCK']);
    const quiet: unknown[] = [];
    const memory = new SessionManager(fixture.options());
    memory.on('warning', (w) => quiet.push(w));
    await memory.login({ grant: 'client_credentials' });
    expect(quiet).toEqual([]);
  });
});
