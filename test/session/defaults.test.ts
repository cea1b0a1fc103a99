// Safe by default: sessions bound to their server and client, lifetimes, exact errors, and no
// token storms from short lifetimes or from APIs that always answer 401.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileStore } from '../../src/exports/file.js';
import { redisStore } from '../../src/exports/redis.js';
import { memoryStore, SessionManager, type Store } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';
import { startJsonServer } from '../helpers/json-server.js';
import { deleteRedisPrefixes, REDIS_URL, runId } from '../helpers/services.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

const fixture = useFakeAuthServer();
let as: FakeAuthServer;
let other: FakeAuthServer;
const prefixes: string[] = [];
beforeAll(async () => {
  other = await startFakeAuthServer();
});
afterAll(async () => {
  await other.close();
  await deleteRedisPrefixes(prefixes);
});
beforeEach(() => {
  as = fixture.as;
  other.resetCounts();
});
const options = fixture.options;
const key = new Uint8Array(32).fill(7);

describe('sessions bound to their server and client', () => {
  it("never sends one server's tokens to another: a typed error naming both sides", async () => {
    const store = memoryStore();
    const a = new SessionManager(options({ store }));
    await a.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    const b = new SessionManager({ ...options({ store }), tokenEndpoint: other.tokenEndpoint });
    const err = await rejection(b.get('password'));
    expect(err.code).toBe('TOKENKEEPER_SESSION_MISMATCH');
    expect(err.message).toContain(as.tokenEndpoint);
    expect(err.message).toContain(other.tokenEndpoint);
    // A manager of the same server but another client is refused too.
    const c = new SessionManager(options({ store, client: { clientId: 'public-client' } }));
    expect((await rejection(c.get('password'))).code).toBe('TOKENKEEPER_SESSION_MISMATCH');
    // Logging in over it needs { replace: true }; A's session is untouched until then.
    const refused = await rejection(b.login({ grant: 'client_credentials' }, { sessionId: 'password' }));
    expect(refused.code).toBe('TOKENKEEPER_SESSION_MISMATCH');
    expect(other.counts.received).toBe(0);
    expect((await a.get('password'))?.status).toBe('active');
    await b.login({ grant: 'client_credentials' }, { sessionId: 'password', replace: true });
    expect((await b.get('password'))?.grant).toBe('client_credentials');
    expect((await rejection(a.get('password'))).code).toBe('TOKENKEEPER_SESSION_MISMATCH');
  });

  it('a session another app replaced is never served from memory, even when a watched store says it changed', async () => {
    const inner = memoryStore();
    const listeners = new Set<(key: string | undefined) => void>();
    const store: Store = {
      ...inner,
      watch: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const a = new SessionManager(options({ store }));
    const session = await a.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    expect(as.isActive(await session.getAccessToken())).toBe(true);
    const b = new SessionManager({ ...options({ store }), tokenEndpoint: other.tokenEndpoint });
    await b.login({ grant: 'client_credentials' }, { sessionId: 'password', replace: true });
    for (const listener of listeners) listener('tokenkeeper:s:password');
    await new Promise((r) => setTimeout(r, 50));
    expect((await rejection(session.getAccessToken())).code).toBe('TOKENKEEPER_SESSION_MISMATCH');
  });

  it('with encryption, a record is bound to its app: another app can neither read nor silently overwrite it', async () => {
    const store = memoryStore();
    const encryption = { keys: { k: key }, current: 'k' };
    const a = new SessionManager(options({ store, encryption }));
    await a.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    const b = new SessionManager({ ...options({ store, encryption }), tokenEndpoint: other.tokenEndpoint });
    expect((await rejection(b.get('password'))).code).toBe('TOKENKEEPER_DECRYPT_FAILED');
    expect((await rejection(b.login({ grant: 'client_credentials' }, { sessionId: 'password' }))).code).toBe(
      'TOKENKEEPER_DECRYPT_FAILED',
    );
    expect((await a.get('password'))?.status).toBe('active');
    await b.login({ grant: 'client_credentials' }, { sessionId: 'password', replace: true });
    expect((await b.get('password'))?.grant).toBe('client_credentials');
  });

  it('fileStore({ app }) gives each app its own default folder, and refuses bad names', () => {
    const xdg = mkdtempSync(join(tmpdir(), 'tk-xdg-'));
    const old = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = xdg;
    try {
      expect(fileStore().name).toBe(`file:${join(xdg, 'tokenkeeper')}`);
      expect(fileStore({ app: 'mycli' }).name).toBe(`file:${join(xdg, 'tokenkeeper', 'apps', 'mycli')}`);
      for (const bad of ['', '../x', 'a/b', '.hidden', 'x'.repeat(65), 7]) {
        expect(() => fileStore({ app: bad as string })).toThrow(/fileStore\(\{ app \}\)/);
      }
    } finally {
      if (old === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = old;
    }
  });
});

describe('session lifetimes', () => {
  const stores: [string, () => Store][] = [
    ['memory', () => memoryStore()],
    ['file', () => fileStore({ path: join(mkdtempSync(join(tmpdir(), 'tk-life-')), 's'), fsync: false })],
    [
      'Redis',
      () => {
        const prefix = `${runId()}:`;
        prefixes.push(prefix);
        return redisStore({ url: REDIS_URL, prefix });
      },
    ],
  ];
  for (const [name, make] of stores) {
    it(`${name}: sessionTtlMs ends a session, which then vanishes from reads and listings`, async () => {
      const store = make();
      const manager = new SessionManager(options({ store, sessionTtlMs: 400 }));
      const session = await manager.login({ grant: 'password', username: 'alice', password: 'wonderland' });
      expect(session.info().endsAt).toBeDefined();
      expect(await session.getAccessToken()).toBeTruthy();
      await new Promise((r) => setTimeout(r, 500));
      expect((await rejection(session.getAccessToken())).code).toBe('TOKENKEEPER_NO_SESSION');
      expect(await manager.get('password')).toBeUndefined();
      const ids: string[] = [];
      for await (const id of manager.sessionIds()) ids.push(id);
      expect(ids).toEqual([]);
      await store.close();
    });
  }

  it('idleTtlMs is extended by use, with no store write per call, and ends an unused session', async () => {
    const inner = memoryStore();
    let writes = 0;
    const store: Store = {
      ...inner,
      set: (k, v, o) => {
        writes++;
        return inner.set(k, v, o);
      },
    };
    const manager = new SessionManager(options({ store, idleTtlMs: 400 }));
    const session = await manager.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    writes = 0;
    for (let i = 0; i < 10; i++) {
      await Promise.all(Array.from({ length: 20 }, () => session.getAccessToken()));
      await new Promise((r) => setTimeout(r, 100));
    }
    // Used for a second (2.5 idle lifetimes) in 200 calls: alive, with a handful of writes.
    expect((await manager.get('password'))?.status).toBe('active');
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThan(15);
    await new Promise((r) => setTimeout(r, 500));
    expect((await rejection(session.getAccessToken())).code).toBe('TOKENKEEPER_NO_SESSION');
    expect(await manager.get('password')).toBeUndefined();
  });

  it('refuses bad lifetimes', async () => {
    for (const bad of [0, -1, Number.NaN, '5']) {
      expect(() => new SessionManager(options({ sessionTtlMs: bad as number }))).toThrow(/sessionTtlMs/);
      expect(() => new SessionManager(options({ idleTtlMs: bad as number }))).toThrow(/idleTtlMs/);
    }
    const manager = new SessionManager(options());
    expect((await rejection(manager.login({ grant: 'client_credentials' }, { sessionTtlMs: -5 }))).message).toContain(
      'sessionTtlMs',
    );
  });
});

describe('exact errors', () => {
  it('a wrong client secret is TOKENKEEPER_INVALID_CLIENT with the server description, not a network failure', async () => {
    const manager = new SessionManager(options({ client: { clientId: as.clientId, clientSecret: 'wrong' } }));
    const err = await rejection(manager.login({ grant: 'client_credentials' }));
    expect(err.code).toBe('TOKENKEEPER_INVALID_CLIENT');
    expect(err.message).toContain('invalid_client');
    expect(err.message).not.toMatch(/WWW-Authenticate|challenge/i);
  });

  const table: [string, number, string, Record<string, string>?][] = [
    ['invalid_request', 400, 'TOKENKEEPER_INVALID_REQUEST'],
    [
      'invalid_client',
      401,
      'TOKENKEEPER_INVALID_CLIENT',
      { 'www-authenticate': 'Basic realm="x", error="invalid_client"' },
    ],
    ['invalid_grant', 400, 'TOKENKEEPER_INVALID_GRANT'],
    ['unauthorized_client', 400, 'TOKENKEEPER_INVALID_CLIENT'],
    ['unsupported_grant_type', 400, 'TOKENKEEPER_INVALID_REQUEST'],
    ['invalid_scope', 400, 'TOKENKEEPER_INVALID_SCOPE'],
    ['authorization_pending', 400, 'TOKENKEEPER_AUTHORIZATION_PENDING'],
    ['slow_down', 400, 'TOKENKEEPER_AUTHORIZATION_PENDING'],
    ['access_denied', 400, 'TOKENKEEPER_ACCESS_DENIED'],
    ['expired_token', 400, 'TOKENKEEPER_INVALID_GRANT'],
    ['invalid_dpop_proof', 400, 'TOKENKEEPER_DPOP'],
    ['use_dpop_nonce', 400, 'TOKENKEEPER_DPOP'],
    ['something_new', 400, 'TOKENKEEPER_TOKEN_ENDPOINT'],
  ];
  for (const [error, status, code, headers] of table) {
    it(`${error} (HTTP ${status}) is ${code}, with the server's description`, async () => {
      const server = await startJsonServer(({ json }) => json(status, { error, error_description: `about ${error}` }));
      const fetchWithHeaders: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        if (!headers) return res;
        const h = new Headers(res.headers);
        for (const [k, v] of Object.entries(headers)) h.set(k, v);
        return new Response(await res.arrayBuffer(), { status: res.status, headers: h });
      };
      const manager = new SessionManager(options({ tokenEndpoint: `${server.base}/token`, fetch: fetchWithHeaders }));
      const err = await rejection(manager.login({ grant: 'client_credentials' }));
      expect(err.code).toBe(code);
      expect(err.message).toContain(`about ${error}`);
      expect(err.message).not.toMatch(/WWW-Authenticate|challenge|ResponseBodyError/i);
      await server.close();
    });
  }

  it('a 401 with only a WWW-Authenticate challenge and no body is TOKENKEEPER_INVALID_CLIENT', async () => {
    const manager = new SessionManager(
      options({
        fetch: async () =>
          new Response('', { status: 401, headers: { 'www-authenticate': 'Basic realm="token endpoint"' } }),
      }),
    );
    expect((await rejection(manager.login({ grant: 'client_credentials' }))).code).toBe('TOKENKEEPER_INVALID_CLIENT');
  });
});

describe('no token storms', () => {
  it('20 s tokens with the default 60 s margin: one token request, not one per call', async () => {
    as.accessTokenTtl = 20;
    const manager = new SessionManager(options());
    const session = await manager.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    for (let i = 0; i < 10; i++) await session.getAccessToken();
    expect(as.counts.received).toBe(1); // the login; before 0.2: 11
  });

  it('2 s tokens renew about once per lifetime (the margin is at most half of it)', async () => {
    as.accessTokenTtl = 2;
    const manager = new SessionManager(options());
    const session = await manager.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    const until = Date.now() + 2_500;
    let calls = 0;
    while (Date.now() < until) {
      await session.getAccessToken();
      calls++;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(calls).toBeGreaterThan(50);
    expect(as.counts.refresh).toBeGreaterThanOrEqual(1);
    expect(as.counts.refresh).toBeLessThanOrEqual(3);
  });

  it('an API that always answers 401 costs at most one renewal per token', async () => {
    let apiCalls = 0;
    const manager = new SessionManager(
      options({
        fetch: async (input, init) => {
          if (String(input instanceof Request ? input.url : input).endsWith('/dead')) {
            apiCalls++;
            return new Response('no', { status: 401 });
          }
          return fetch(input, init);
        },
      }),
    );
    const adopted = await manager.adopt('u', as.issue());
    for (let i = 0; i < 5; i++) expect((await adopted.fetch(`${as.issuer}/dead`)).status).toBe(401);
    expect(as.counts.refresh).toBe(1);
    expect(apiCalls).toBe(6);
    // A session whose token the server just issued: the 401 is the API's answer, returned as it is.
    const fresh = await manager.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    for (let i = 0; i < 5; i++) expect((await fresh.fetch(`${as.issuer}/dead`)).status).toBe(401);
    expect(as.counts.refresh).toBe(1);
  });
});

describe('session.info()', () => {
  it('tells status, grant, scope, server, client, expiry and times, never a secret', async () => {
    const manager = new SessionManager(options({ sessionTtlMs: 60_000 }));
    const session = await manager.login({
      grant: 'password',
      username: 'alice',
      password: 'wonderland',
      scope: 'read',
    });
    const info = session.info();
    expect(info).toMatchObject({
      id: 'password',
      status: 'active',
      grant: 'password',
      scope: 'read',
      issuer: as.tokenEndpoint,
      clientId: as.clientId,
      refreshable: true,
    });
    expect(Date.parse(info.expiresAt as string)).toBeGreaterThan(Date.now());
    expect(Date.parse(info.createdAt)).toBeLessThanOrEqual(Date.now());
    expect(info.lastRenewedAt).toBeUndefined();
    await session.getAccessToken({ forceRefresh: true });
    expect(Date.parse(session.info().lastRenewedAt as string)).toBeLessThanOrEqual(Date.now());
    const text = JSON.stringify(session.info());
    for (const secret of [session.tokens.accessToken, session.tokens.refreshToken as string, as.clientSecret]) {
      expect(text).not.toContain(secret);
    }
  });
});
