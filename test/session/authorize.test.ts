import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SessionManager } from '../../src/index.js';
import { rejection, thrown } from '../helpers/errors.js';
import { startJsonServer } from '../helpers/json-server.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// Bad input to the login flows, each refused with a clear typed error before anything is sent.
// The flows themselves run end to end against oidc-provider in login-flows.browser.test.ts.
const fixture = useFakeAuthServer();
const manager = () => new SessionManager(fixture.options({ authorizationEndpoint: `${fixture.as.issuer}/authorize` }));
const redirectUri = 'http://127.0.0.1/callback';

describe('authorize()', () => {
  it('builds a PKCE S256 URL with a fresh state, keeps the pending login with a TTL, and sends a nonce only for openid', async () => {
    const m = manager();
    const a = await m.authorize({
      redirectUri,
      scope: 'openid read',
      loginHint: 'alice@example.com',
      extra: { audience: 'api' },
    });
    const b = await m.authorize({ redirectUri, scope: 'read', sessionId: 'bob' });
    const url = new URL(a.url);
    expect(url.origin + url.pathname).toBe(`${fixture.as.issuer}/authorize`);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: fixture.as.clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid read',
      state: a.state,
      code_challenge_method: 'S256',
      login_hint: 'alice@example.com',
      audience: 'api',
    });
    expect(url.searchParams.get('nonce')).toMatch(/^[\w-]{43}$/);
    expect(new URL(b.url).searchParams.has('nonce')).toBe(false);
    expect(a.state).not.toBe(b.state);
    const pending = await fixture.store.get(`tokenkeeper:login:${a.state}`);
    expect(pending?.value).toMatchObject({ tokenkeeper: 'login/1', redirectUri });
    // The verifier stays in the store: the URL carries only its hash.
    expect(a.url).not.toContain(pending?.value.verifier as string);
  });

  it('refuses a bad redirectUri, a reserved extra parameter, a bad session id, and a server without an authorization endpoint', async () => {
    const m = manager();
    const bad = await rejection(m.authorize({ redirectUri: '/callback' }));
    expect(bad.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(bad.message).toContain('redirectUri');
    const reserved = await rejection(m.authorize({ redirectUri, extra: { state: 'mine' } }));
    expect(reserved.message).toContain('extra cannot set state');
    const notString = await rejection(m.authorize({ redirectUri, extra: { n: 1 as never } }));
    expect(notString.message).toContain('extra.n must be a string');
    expect((await rejection(m.authorize({ redirectUri, sessionId: '' }))).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect((await rejection(m.authorize({ redirectUri, sessionId: 'a\u0000b' }))).code).toBe('TOKENKEEPER_INVALID_KEY');
    const none = await rejection(new SessionManager(fixture.options()).authorize({ redirectUri }));
    expect(none.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(none.message).toContain('authorizationEndpoint');
    expect(thrown(() => new SessionManager(fixture.options({ pendingLoginTtlMs: 0 }))).message).toContain(
      'pendingLoginTtlMs',
    );
  });
});

describe('callback()', () => {
  it('refuses input that is no callback, and a callback of a login without a session id before using it up', async () => {
    const m = manager();
    expect((await rejection(m.callback(42 as never))).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    const { state } = await m.authorize({ redirectUri, scope: 'read' });
    const noId = await rejection(m.callback(`?code=abc&state=${state}`));
    expect(noId.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(noId.message).toContain('sessionId');
    expect(await fixture.store.get(`tokenkeeper:login:${state}`)).toBeDefined(); // still there to retry
    expect(fixture.as.counts.authorizationCode).toBe(0);
  });

  it('reports an error answer without a state as a state problem, naming the error', async () => {
    const err = await rejection(manager().callback('http://127.0.0.1/callback?error=access_denied'));
    expect(err.code).toBe('TOKENKEEPER_LOGIN_STATE');
    expect(err.message).toContain('access_denied');
  });

  it('treats a pending login that is not one as unknown', async () => {
    await fixture.store.set('tokenkeeper:login:forged-state', { tokenkeeper: 'login/1', verifier: 3 });
    const err = await rejection(manager().callback('?code=x&state=forged-state'));
    expect(err.code).toBe('TOKENKEEPER_LOGIN_STATE');
  });
});

describe('client authentication options', () => {
  it('refuses a public JWK, a private key with a secret method, a secret JWT without a secret, and an unknown method', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const base = fixture.options();
    const make = (client: object) => () => new SessionManager({ ...base, client: { clientId: 'c', ...client } });
    expect(thrown(make({ privateKey: publicKey.export({ format: 'jwk' }) })).message).toContain('private JWK');
    expect(
      thrown(
        make({
          privateKey: privateKey.export({ format: 'jwk' }),
          authMethod: 'client_secret_basic',
          clientSecret: 's',
        }),
      ).message,
    ).toContain('only used with authMethod private_key_jwt');
    expect(thrown(make({ authMethod: 'client_secret_jwt' })).message).toContain('needs a clientSecret');
    expect(thrown(make({ authMethod: 'tls_client_auth', clientSecret: 's' })).message).toContain('private_key_jwt');
  });

  it('refuses a private JWK it cannot sign with at the first request, without showing the key', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    const jwk = privateKey.export({ format: 'jwk' });
    const m = new SessionManager({ ...fixture.options(), client: { clientId: 'c', privateKey: jwk } });
    const err = await rejection(m.login({ grant: 'client_credentials' }));
    expect(err.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(err.message).toContain('client.privateKey');
    expect(err.message).not.toContain(jwk.d as string);
    expect(fixture.as.counts.received).toBe(0);
  });
});

describe('pushed authorization requests (RFC 9126)', () => {
  /** A server whose discovery metadata adds `meta`, with a PAR endpoint that records what it gets. */
  async function parServer(meta: (base: string) => Record<string, unknown>, status = 201, answer: unknown = {}) {
    const pushed: { body: URLSearchParams; authorization?: string }[] = [];
    const server = await startJsonServer(({ url, req, body, json }) => {
      if (url.pathname.startsWith('/.well-known/')) {
        return json(200, {
          issuer: server.base,
          authorization_endpoint: `${server.base}/authorize`,
          token_endpoint: `${server.base}/token`,
          ...meta(server.base),
        });
      }
      if (url.pathname === '/par') {
        pushed.push({ body: new URLSearchParams(body), authorization: req.headers.authorization });
        return json(status, answer);
      }
      json(404, {});
    });
    const m = new SessionManager({ issuer: server.base, client: { clientId: 'c1', clientSecret: 's3cret' } });
    return { server, pushed, m };
  }
  const requestUri = 'urn:ietf:params:oauth:request_uri:r1';
  const requiresPar = (base: string) => ({
    pushed_authorization_request_endpoint: `${base}/par`,
    require_pushed_authorization_requests: true,
  });

  it('pushes the request when the server requires it, authenticated as the client; the URL names only the request_uri', async () => {
    const { server, pushed, m } = await parServer(requiresPar, 201, { request_uri: requestUri, expires_in: 60 });
    try {
      const r = await m.authorize({ redirectUri, scope: 'openid read', sessionId: 'alice' });
      expect(pushed).toHaveLength(1);
      const url = new URL(r.url);
      expect(url.origin + url.pathname).toBe(`${server.base}/authorize`);
      expect(Object.fromEntries(url.searchParams)).toEqual({ client_id: 'c1', request_uri: requestUri });
      const sent = pushed[0] as { body: URLSearchParams; authorization?: string };
      expect(sent.authorization).toBe(`Basic ${Buffer.from('c1:s3cret').toString('base64')}`);
      expect(Object.fromEntries(sent.body)).toMatchObject({
        client_id: 'c1',
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: 'openid read',
        state: r.state,
        code_challenge_method: 'S256',
      });
      // par: false puts the parameters in the URL although the server asks for PAR.
      const plain = new URL((await m.authorize({ redirectUri, scope: 'read', sessionId: 'bob', par: false })).url);
      expect(plain.searchParams.get('state')).toBeTruthy();
      expect(pushed).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('a server that refuses the push: a typed error with its description, and no URL', async () => {
    const { server, m } = await parServer(requiresPar, 400, {
      error: 'invalid_request',
      error_description: 'redirect_uri is not registered',
    });
    try {
      const err = await rejection(m.authorize({ redirectUri, scope: 'read', sessionId: 'alice' }));
      expect(err.code).toMatch(/^TOKENKEEPER_/);
      expect(err.message).toContain('pushed authorization request');
      expect(err.message).toContain('redirect_uri is not registered');
    } finally {
      await server.close();
    }
  });

  it('refuses par that is not a boolean, and par: true on a server without a PAR endpoint, before anything is sent', async () => {
    const { server, pushed, m } = await parServer(() => ({}));
    try {
      const notBoolean = await rejection(m.authorize({ redirectUri, par: 'yes' as never }));
      expect(notBoolean.message).toContain('par must be true or false');
      const none = await rejection(m.authorize({ redirectUri, sessionId: 'alice', par: true }));
      expect(none.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
      expect(none.message).toContain('pushedAuthorizationRequestEndpoint');
      expect(pushed).toHaveLength(0);
    } finally {
      await server.close();
    }
  });
});
