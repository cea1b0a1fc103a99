import { afterEach, describe, expect, it, vi } from 'vitest';
import { memoryStore, SessionManager, type SessionManagerOptions, type TokenkeeperError } from '../../src/index.js';
import { basicEncode } from '../../src/session/oauth.js';
import { rejection } from '../helpers/errors.js';
import { startFakeAuthServer } from '../helpers/fake-as.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// Quirks of authorization servers in the wild (Glewlwyd, django-oauth-toolkit), each answered by
// the strict fake server on cue: refusals without an OAuth error, Basic credentials compared
// without form-decoding, metadata at odd URLs, ID tokens from the device grant, revocation that
// does not cascade, and resource servers that end access tokens early.
const fixture = useFakeAuthServer();
const manager = (extra: Partial<SessionManagerOptions> = {}) => new SessionManager(fixture.options(extra));

describe('a refused refresh token is never sent again, whatever shape the refusal has', () => {
  for (const [shape, quirk] of [
    ['invalid_grant', undefined],
    ['a bare 400 with an empty body', 400],
    ['a bare 401 with an empty body', 401],
  ] as const) {
    it(`${shape}: reauth-required (refresh-refused), one event, later calls fail without a request`, async () => {
      const as = fixture.as;
      if (quirk !== undefined) as.quirks.bareRefusals = quirk;
      const m = manager();
      const events: TokenkeeperError[] = [];
      m.on('reauth-required', ({ error }) => events.push(error));
      const issued = as.issue();
      const session = await m.adopt('u', issued);
      // The server revokes the grant (an admin, a password change): its refresh token is refused.
      await fetch(as.revocationEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: issued.refresh_token as string,
          client_id: as.clientId,
          client_secret: as.clientSecret,
        }),
      });
      const err = await rejection(session.getAccessToken({ forceRefresh: true }));
      expect(err.code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
      expect(err.sessionId).toBe('u');
      if (quirk !== undefined) {
        expect(err.message).toContain(`the server refused the refresh token with HTTP ${quirk} and no error code`);
        expect((err.cause as { status?: number }).status).toBe(quirk);
        expect(session.info().reason).toBe('refresh-refused');
      } else {
        expect(session.info().reason).toBe('invalid_grant');
      }
      expect(err.message).not.toContain('endpoint URL');
      expect(session.status).toBe('reauth-required');
      expect(events).toHaveLength(1);
      expect(as.counts.refresh).toBe(1);
      for (let i = 0; i < 5; i++) {
        expect((await rejection(session.getAccessToken())).code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
        expect((await rejection(session.fetch(as.apiUrl))).code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
      }
      // Another manager (another process) reading the same store sends nothing either.
      const other = await manager().get('u');
      expect((await rejection((other as NonNullable<typeof other>).getAccessToken())).code).toBe(
        'TOKENKEEPER_REAUTH_REQUIRED',
      );
      expect(as.counts.refresh).toBe(1);
      expect(events).toHaveLength(1);
    });
  }

  it('a bare 403 to a refresh is the client refused: INVALID_CLIENT with a hint, and the session is kept', async () => {
    const as = fixture.as;
    as.quirks.basicUndecoded = true;
    const session = await manager({ client: { clientId: as.clientId, clientSecret: 'wrong-secret' } }).adopt(
      'u',
      as.issue(),
    );
    const err = await rejection(session.getAccessToken({ forceRefresh: true }));
    expect(err.code).toBe('TOKENKEEPER_INVALID_CLIENT');
    expect(err.message).toContain('HTTP 403, no error code');
    expect(err.message).toContain('client_secret_post');
    expect(err.message).not.toContain('wrong-secret');
    expect(session.status).toBe('active');
  });

  it('a 404 or an HTML page still says to check the endpoint URL; another bare status says what it was', async () => {
    const as = fixture.as;
    const html: typeof fetch = async () =>
      new Response('<!doctype html><p>Not here</p>', { status: 400, headers: { 'content-type': 'text/html' } });
    const session = await manager({ fetch: html }).adopt('h', as.issue());
    const err = await rejection(session.getAccessToken({ forceRefresh: true }));
    expect(err.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(err.message).toContain('Check the endpoint URL');
    expect(session.status).toBe('active');
    const missing = await rejection(
      manager({ tokenEndpoint: `${as.issuer}/nope` }).login({ grant: 'client_credentials' }),
    );
    expect(missing.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(missing.message).toContain('HTTP 404');
    expect(missing.message).toContain('Check the endpoint URL');
    const teapot: typeof fetch = async () => new Response('', { status: 418 });
    const odd = await rejection(manager({ fetch: teapot }).login({ grant: 'client_credentials' }));
    expect(odd.message).toBe('The server refused the client_credentials request (HTTP 418, no error code).');
  });

  it('network errors and 5xx keep their rules: the session stays active and the token is kept', async () => {
    const as = fixture.as;
    const session = await manager().adopt('n', as.issue());
    as.failNext(3, 503); // every try of one call
    const err = await rejection(session.getAccessToken({ forceRefresh: true }));
    expect(err.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(session.status).toBe('active');
    expect(await session.getAccessToken({ forceRefresh: true })).toMatch(/^at-/);
  });
});

describe('client authentication that interoperates', () => {
  it('encodes only what is not an unreserved character', () => {
    expect(basicEncode('tk-conf_1.2~x')).toBe('tk-conf_1.2~x');
    expect(basicEncode("a!b*c'd(e)f g:h%i+j/k")).toBe('a%21b%2Ac%27d%28e%29f%20g%3Ah%25i%2Bj%2Fk');
    expect(basicEncode('é')).toBe('%C3%A9');
  });

  it('client_secret_basic works with a server that does not form-decode (ids and secrets of letters, digits, -._~)', async () => {
    const as = await startFakeAuthServer({ clientId: 'tk-conf.app_1', clientSecret: 'Zm9v-YmFy_YmF6.cXV4~' });
    try {
      as.quirks.basicUndecoded = true;
      const m = new SessionManager({
        store: memoryStore(),
        tokenEndpoint: as.tokenEndpoint,
        client: { clientId: as.clientId, clientSecret: as.clientSecret },
      });
      const session = await m.login({ grant: 'password', username: 'alice', password: 'wonderland' });
      expect(as.isActive(await session.getAccessToken({ forceRefresh: true }))).toBe(true);
      expect(as.counts.refresh).toBe(1);
    } finally {
      await as.close();
    }
  });

  it('and with a server that form-decodes, whatever characters the secret has', async () => {
    const as = await startFakeAuthServer({ clientId: 'app id+1', clientSecret: "s3:c!r*e'(t) %2B/é+" });
    try {
      const m = new SessionManager({
        store: memoryStore(),
        tokenEndpoint: as.tokenEndpoint,
        client: { clientId: as.clientId, clientSecret: as.clientSecret },
      });
      const session = await m.login({ grant: 'client_credentials' });
      expect(as.isActive(await session.getAccessToken())).toBe(true);
    } finally {
      await as.close();
    }
  });

  it('a refused client (invalid_client, or a bare 401/403) is INVALID_CLIENT with a hint to try the other method', async () => {
    const as = fixture.as;
    const wrong = { client: { clientId: as.clientId, clientSecret: 'not-the-secret' } };
    const json = await rejection(manager(wrong).login({ grant: 'client_credentials' }));
    expect(json.code).toBe('TOKENKEEPER_INVALID_CLIENT');
    expect(json.message).toContain('authMethod client_secret_post');
    as.quirks.basicUndecoded = true;
    const bare = await rejection(manager(wrong).login({ grant: 'client_credentials' }));
    expect(bare.code).toBe('TOKENKEEPER_INVALID_CLIENT');
    expect(bare.message).toContain('HTTP 403');
    expect(bare.message).toContain('authMethod client_secret_post');
    expect(bare.message).not.toContain('not-the-secret');
  });
});

describe('discovery and endpoints', () => {
  const discovering = (extra: Partial<SessionManagerOptions> = {}) =>
    manager({ tokenEndpoint: undefined, revocationEndpoint: undefined, issuer: fixture.as.issuer, ...extra });

  it('follows a redirect to the metadata URL with a trailing slash (django-oauth-toolkit)', async () => {
    fixture.as.quirks.slashMetadata = true;
    const session = await discovering().login({ grant: 'client_credentials' });
    expect(fixture.as.isActive(await session.getAccessToken())).toBe(true);
  });

  it('follows no other redirect', async () => {
    fixture.as.quirks.metadataRedirect = 'http://127.0.0.1:9/.well-known/openid-configuration';
    const err = await rejection(discovering().login({ grant: 'client_credentials' }));
    expect(err.code).toBe('TOKENKEEPER_DISCOVERY_FAILED');
    expect(err.message).toContain('discoveryUrl');
  });

  it('reads metadata served at an odd URL from discoveryUrl, and still checks its issuer', async () => {
    const as = fixture.as;
    as.quirks.metadataAt = '/oauth/meta.json';
    const plain = await rejection(discovering().login({ grant: 'client_credentials' }));
    expect(plain.code).toBe('TOKENKEEPER_DISCOVERY_FAILED');
    const session = await discovering({ discoveryUrl: `${as.issuer}/oauth/meta.json` }).login({
      grant: 'client_credentials',
    });
    expect(as.isActive(await session.getAccessToken())).toBe(true);
    const foreign = await rejection(
      discovering({ issuer: `${as.issuer}/other`, discoveryUrl: `${as.issuer}/oauth/meta.json` }).login(
        {
          grant: 'client_credentials',
        },
        { sessionId: 'f' },
      ),
    );
    expect(foreign.code).toBe('TOKENKEEPER_DISCOVERY_FAILED');
  });

  it('refuses bad discoveryUrl and jwksUri options before anything is sent', () => {
    const base = { store: memoryStore(), client: { clientId: 'c' } };
    expect(() => new SessionManager({ ...base, discoveryUrl: 'https://a.example/meta' })).toThrow(
      /discoveryUrl needs the issuer/,
    );
    expect(
      () => new SessionManager({ ...base, issuer: 'https://a.example', discoveryUrl: 'http://a.example/meta' }),
    ).toThrow(/discoveryUrl .*plain http/);
    expect(() => new SessionManager({ ...base, tokenEndpoint: 'https://a.example/t', jwksUri: 'jwks' })).toThrow(
      /jwksUri must be an absolute URL/,
    );
  });
});

describe('ID tokens from every grant', () => {
  const device = { grant: 'device_code', onPrompt: () => {} } as const;
  const withDevice = (extra: Partial<SessionManagerOptions> = {}) =>
    manager({ deviceAuthorizationEndpoint: fixture.as.deviceEndpoint, issuer: fixture.as.issuer, ...extra });

  it('the device grant validates the ID token and keeps its claims (not the token), as callback() does', async () => {
    const as = fixture.as;
    as.device = { interval: 1, expiresIn: 60, answers: ['ok'] };
    as.quirks.deviceIdToken = 'valid';
    const session = await withDevice({ jwksUri: as.jwksUri }).login(device);
    expect(session.claims).toMatchObject({
      sub: 'alice',
      email: 'alice@example.com',
      iss: as.issuer,
      aud: as.clientId,
    });
    expect(session.tokens.idToken).toBeUndefined();
    // Restored by another manager (another process), the claims are there.
    expect((await withDevice({ jwksUri: as.jwksUri }).get('device_code'))?.claims?.sub).toBe('alice');
  });

  it('finds the JWKS from discovery too', async () => {
    const as = fixture.as;
    as.device = { interval: 1, expiresIn: 60, answers: ['ok'] };
    as.quirks.deviceIdToken = 'valid';
    const m = manager({ tokenEndpoint: undefined, revocationEndpoint: undefined, issuer: as.issuer });
    expect((await m.login(device)).claims?.sub).toBe('alice');
  });

  it('a forged ID token from the device grant is TOKENKEEPER_ID_TOKEN, and nothing is stored', async () => {
    const as = fixture.as;
    as.device = { interval: 1, expiresIn: 60, answers: ['ok'] };
    as.quirks.deviceIdToken = 'forged';
    const err = await rejection(withDevice({ jwksUri: as.jwksUri }).login(device));
    expect(err.code).toBe('TOKENKEEPER_ID_TOKEN');
    expect(await manager().get('device_code')).toBeUndefined();
  });

  it('token exchange validates and keeps the claims too', async () => {
    const as = fixture.as;
    as.quirks.deviceIdToken = 'valid';
    const grant = {
      grant: 'token_exchange',
      subjectToken: 'some-subject-token',
      subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    } as const;
    const session = await manager({ issuer: as.issuer, jwksUri: as.jwksUri }).login(grant);
    expect(session.claims?.sub).toBe('alice');
    expect(session.tokens.idToken).toBeUndefined();
    as.quirks.deviceIdToken = 'forged';
    const err = await rejection(manager({ issuer: as.issuer, jwksUri: as.jwksUri }).login(grant, { sessionId: 'x' }));
    expect(err.code).toBe('TOKENKEEPER_ID_TOKEN');
    expect(await manager().get('x')).toBeUndefined();
  });
});

describe('logout revokes both tokens', () => {
  it('refresh token first, then the access token: a server without the cascade ends both', async () => {
    const as = fixture.as;
    as.quirks.noRevocationCascade = true;
    const session = await manager().login({ grant: 'password', username: 'alice', password: 'wonderland' });
    const accessToken = await session.getAccessToken();
    const result = await session.logout();
    expect(result).toEqual({ revoked: true, refreshToken: 'revoked', accessToken: 'revoked' });
    expect(as.revocationRequests).toEqual([
      { hint: 'refresh_token', kind: 'refresh_token' },
      { hint: 'access_token', kind: 'access_token' },
    ]);
    expect(as.isActive(accessToken)).toBe(false);
  });

  it('a server that refuses a revocation is reported as such, with an error event, and the session is deleted', async () => {
    const as = fixture.as;
    as.quirks.refuseRevocation = true;
    const m = manager();
    const errors: unknown[] = [];
    m.on('error', ({ error }) => errors.push(error));
    const session = await m.login({ grant: 'password', username: 'alice', password: 'wonderland' });
    const result = await session.logout();
    expect(result).toEqual({ revoked: false, refreshToken: 'revoked', accessToken: 'refused' });
    expect(errors).toHaveLength(1);
    expect(await m.get(session.id)).toBeUndefined();
  });

  it('reports a server without a revocation endpoint, an unreachable one, a session without a refresh token, and revoke: false', async () => {
    const as = fixture.as;
    const none = await manager({ revocationEndpoint: undefined }).login({ grant: 'client_credentials' });
    expect(await none.logout()).toEqual({ revoked: false, refreshToken: 'none', accessToken: 'unsupported' });
    const cc = await manager().login({ grant: 'client_credentials' });
    expect(await cc.logout()).toEqual({ revoked: true, refreshToken: 'none', accessToken: 'revoked' });
    const down = await manager({ revocationEndpoint: `http://127.0.0.1:9/revoke` }).login({
      grant: 'password',
      username: 'alice',
      password: 'wonderland',
    });
    expect(await down.logout()).toEqual({ revoked: false, refreshToken: 'failed', accessToken: 'failed' });
    const kept = await manager().login({ grant: 'password', username: 'alice', password: 'wonderland' });
    as.revocationRequests.length = 0;
    expect(await kept.logout({ revoke: false })).toEqual({
      revoked: false,
      refreshToken: 'skipped',
      accessToken: 'skipped',
    });
    expect(as.revocationRequests).toHaveLength(0);
  });
});

describe('the 401 path: one renewal per ended token', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renews each token the server ends early, round after round', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const as = fixture.as;
    const session = await manager().adopt('u', as.issue());
    for (let round = 1; round <= 3; round++) {
      // Later than the 10 s in which a 401 for a just-issued token is taken as the API's answer.
      vi.setSystemTime(Date.now() + 30_000);
      as.endAccessToken(await session.getAccessToken());
      expect((await session.fetch(as.apiUrl)).status).toBe(200);
      expect(as.counts.refresh).toBe(round);
    }
  });

  it('concurrent 401s for one ended token share one renewal, and every call is answered', async () => {
    const as = fixture.as;
    const session = await manager().adopt('u', as.issue());
    as.endAccessToken(await session.getAccessToken());
    const answers = await Promise.all(Array.from({ length: 10 }, () => session.fetch(as.apiUrl)));
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(as.counts.refresh).toBe(1);
  });
});
