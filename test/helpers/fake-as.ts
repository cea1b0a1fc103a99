import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/**
 * A strict OAuth 2 authorization server on 127.0.0.1 for tests: every refresh rotates the
 * refresh token, and presenting a used refresh token revokes its whole family (RFC 9700
 * §4.14.2), as real servers do. Counts every request; latency and 5xx answers on cue.
 */
export interface FakeAuthServer {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly revocationEndpoint: string;
  /** A protected resource: 200 with a valid access token, 401 otherwise. */
  readonly apiUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly counts: Counts;
  /** Delay before answering the token endpoint. */
  latencyMs: number;
  /**
   * When a client goes away during `latencyMs`, drop its request unprocessed (a server that had
   * not committed yet). Default false: the request is processed anyway, as by a server that
   * already rotated the token when the client gave up.
   */
  dropAbandoned: boolean;
  /** Lifetime of issued access tokens, in seconds. */
  accessTokenTtl: number;
  /**
   * A reuse grace window (Okta, Auth0, Hydra, Keycloak have one): a used refresh token presented
   * again within this many ms of its first use is accepted (counted in `graceReuse`) instead of
   * revoking the family. Default 0.
   */
  refreshGraceMs: number;
  /** The share (0 to 1) of successful refresh answers dropped after the server rotated: lost answers. */
  dropRate: number;
  /** The device authorization endpoint (RFC 8628). */
  readonly deviceEndpoint: string;
  /**
   * The device flow, on cue: the `interval` (s) and `expires_in` (s) the device endpoint hands
   * out, and the answers to successive device_code polls (`ok` issues tokens; anything else is
   * sent as the OAuth error), the last one repeated.
   */
  device: { interval?: number; expiresIn: number; answers: string[]; verificationUri?: string };
  /** When each device_code poll arrived (ms since the epoch). */
  readonly devicePolls: number[];
  /**
   * Quirks of servers in the wild, on cue (all off by default):
   * - `bareRefusals`: a refused refresh token gets HTTP 400 (or the status given) with an empty
   *   body and no OAuth error (Glewlwyd);
   * - `basicUndecoded`: Basic credentials are compared as sent, without form-decoding, and a
   *   mismatch gets a bare 403 (Glewlwyd);
   * - `slashMetadata`: the metadata is served only at `/.well-known/openid-configuration/`, and the
   *   URL without the slash answers 301 to it (django-oauth-toolkit); `metadataAt`: only at this path;
   *   `metadataRedirect`: every well-known URL answers 301 to this URL (a redirect not to follow);
   * - `noRevocationCascade`: revoking a refresh token leaves its access tokens alive (Glewlwyd);
   * - `deviceIdToken`: the device and token exchange grants' answers carry an ID token signed
   *   with the server's key (`valid`) or another key (`forged`) (Glewlwyd's device flow);
   * - `refuseRevocation`: the revocation endpoint answers 400 `unsupported_token_type` for access tokens.
   */
  quirks: {
    bareRefusals?: boolean | number;
    basicUndecoded?: boolean;
    slashMetadata?: boolean;
    metadataAt?: string;
    metadataRedirect?: string;
    noRevocationCascade?: boolean;
    deviceIdToken?: 'valid' | 'forged';
    refuseRevocation?: boolean;
  };
  /** The server's signing key set (RS256, the ID token default), served at `jwksUri`. */
  readonly jwksUri: string;
  /** Every request to the revocation endpoint: the token's hint and whether it was a refresh token. */
  readonly revocationRequests: { hint: string | null; kind: 'refresh_token' | 'access_token' | 'unknown' }[];
  /** The newest refresh token the server issued in each family, by the family's first token. */
  newestRefreshToken(anyTokenOfFamily: string): string | undefined;
  /** Answer the next `n` token requests with `status` (default 503). */
  failNext(n: number, status?: number): void;
  /** A token response for a new refresh-token family, as if a user had logged in. */
  issue(options?: { expiresIn?: number }): TokenResponseBody;
  /** Whether an access token is currently accepted. */
  isActive(accessToken: string): boolean;
  /** Ends an access token before its expiry, as a server does on a password change or an admin's revocation. */
  endAccessToken(accessToken: string): void;
  resetCounts(): void;
  close(): Promise<void>;
}

export interface TokenResponseBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token?: string;
  scope?: string;
}

interface Counts {
  /** Token requests that arrived, counted before any latency. */
  received: number;
  /** Token requests whose client went away during the latency: never processed, as a server does. */
  abandoned: number;
  refresh: number;
  clientCredentials: number;
  password: number;
  authorizationCode: number;
  deviceCode: number;
  invalidGrant: number;
  reuseDetected: number;
  /** Used refresh tokens accepted again within `refreshGraceMs`. */
  graceReuse: number;
  /** A refresh token presented while a request with the same token was still being processed. */
  concurrentReuse: number;
  /** Refresh answers dropped on purpose (`dropRate`): the server rotated, the client never heard. */
  dropped: number;
  revocations: number;
  api: number;
  failed: number;
}

const zero = (): Counts => ({
  received: 0,
  abandoned: 0,
  refresh: 0,
  clientCredentials: 0,
  password: 0,
  authorizationCode: 0,
  deviceCode: 0,
  invalidGrant: 0,
  reuseDetected: 0,
  graceReuse: 0,
  concurrentReuse: 0,
  dropped: 0,
  revocations: 0,
  api: 0,
  failed: 0,
});

export async function startFakeAuthServer(
  options: { clientId?: string; clientSecret?: string } = {},
): Promise<FakeAuthServer> {
  const clientId = options.clientId ?? 'test-client';
  const clientSecret = options.clientSecret ?? 's3cret-client';
  const signing = await generateKeyPair('RS256');
  const forger = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(signing.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const families = new Map<string, { revoked: boolean }>();
  const refreshTokens = new Map<string, { family: string; used: boolean; usedAt: number }>();
  const newest = new Map<string, string>();
  const inFlight = new Set<string>();
  const accessTokens = new Map<string, { family: string | undefined; expiresAt: number; revoked: boolean }>();
  let failures: { left: number; status: number } = { left: 0, status: 503 };

  const token = (prefix: string) => `${prefix}-${randomBytes(12).toString('base64url')}`;

  const issueAccess = (family: string | undefined, ttl: number) => {
    const at = token('at');
    accessTokens.set(at, { family, expiresAt: Date.now() + ttl * 1000, revoked: false });
    return at;
  };

  const issueFamilyTokens = (family: string, ttl: number, scope?: string): TokenResponseBody => {
    const rt = token('rt');
    refreshTokens.set(rt, { family, used: false, usedAt: 0 });
    newest.set(family, rt);
    const body: TokenResponseBody = {
      access_token: issueAccess(family, ttl),
      token_type: 'Bearer',
      expires_in: ttl,
      refresh_token: rt,
    };
    if (scope) body.scope = scope;
    return body;
  };

  const newFamily = () => {
    const id = token('fam');
    families.set(id, { revoked: false });
    return id;
  };

  const revokeFamily = (family: string) => {
    const f = families.get(family);
    if (f) f.revoked = true;
    for (const a of accessTokens.values()) if (a.family === family) a.revoked = true;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      res.writeHead(500).end(String(error));
    });
  });

  const fake: FakeAuthServer = {
    issuer: '',
    tokenEndpoint: '',
    revocationEndpoint: '',
    apiUrl: '',
    deviceEndpoint: '',
    device: { interval: 1, expiresIn: 600, answers: ['ok'] },
    devicePolls: [],
    quirks: {},
    jwksUri: '',
    revocationRequests: [],
    clientId,
    clientSecret,
    counts: zero(),
    latencyMs: 0,
    dropAbandoned: false,
    accessTokenTtl: 3600,
    refreshGraceMs: 0,
    dropRate: 0,
    newestRefreshToken(rt) {
      const family = refreshTokens.get(rt)?.family;
      return family === undefined ? undefined : newest.get(family);
    },
    failNext(n, status = 503) {
      failures = { left: n, status };
    },
    issue(options = {}) {
      return issueFamilyTokens(newFamily(), options.expiresIn ?? fake.accessTokenTtl);
    },
    isActive(at) {
      const a = accessTokens.get(at);
      return a !== undefined && !a.revoked && a.expiresAt > Date.now();
    },
    endAccessToken(at) {
      const a = accessTokens.get(at);
      if (a) a.revoked = true;
    },
    resetCounts() {
      Object.assign(fake.counts, zero());
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', fake.issuer);
    // Pages on other loopback origins call it too (browser tests): allow CORS, as SPA-facing servers do.
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-expose-headers', 'www-authenticate');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'authorization, content-type, dpop',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
      res.end(JSON.stringify(body));
    };
    const metadata = () =>
      json(200, {
        issuer: fake.issuer,
        token_endpoint: fake.tokenEndpoint,
        revocation_endpoint: fake.revocationEndpoint,
        device_authorization_endpoint: fake.deviceEndpoint,
        jwks_uri: fake.jwksUri,
      });
    const q = fake.quirks;
    if (req.method === 'GET' && url.pathname === '/jwks') return json(200, { keys: [jwk] });
    if (req.method === 'GET' && q.metadataAt !== undefined) {
      if (url.pathname === q.metadataAt) return metadata();
      if (url.pathname.startsWith('/.well-known/')) return json(404, { error: 'not_found' });
    }
    if (req.method === 'GET' && url.pathname.startsWith('/.well-known/')) {
      if (q.metadataRedirect !== undefined) {
        res.writeHead(301, { location: q.metadataRedirect }).end();
        return;
      }
      if (q.slashMetadata) {
        if (url.pathname === '/.well-known/openid-configuration') {
          res.writeHead(301, { location: '/.well-known/openid-configuration/' }).end();
          return;
        }
        if (url.pathname !== '/.well-known/openid-configuration/') return json(404, { error: 'not_found' });
      }
      return metadata();
    }
    if (url.pathname === '/api') {
      fake.counts.api++;
      const auth = req.headers.authorization ?? '';
      const at = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!fake.isActive(at))
        return json(401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
      return json(200, { ok: true, method: req.method, body: await readBody(req) });
    }
    if (req.method !== 'POST') return json(404, { error: 'not_found' });
    const body = new URLSearchParams(await readBody(req));
    const presented = body.get('grant_type') === 'refresh_token' ? (body.get('refresh_token') ?? '') : undefined;
    if (presented !== undefined) {
      if (inFlight.has(presented)) fake.counts.concurrentReuse++;
      inFlight.add(presented);
      res.once('close', () => inFlight.delete(presented));
    }
    if (!authenticated(req, body)) {
      if (fake.quirks.basicUndecoded) {
        res.writeHead(403).end();
        return;
      }
      return json(401, { error: 'invalid_client' });
    }

    if (url.pathname === '/revoke') {
      fake.counts.revocations++;
      const t = body.get('token') ?? '';
      const rt = refreshTokens.get(t);
      const at = accessTokens.get(t);
      fake.revocationRequests.push({
        hint: body.get('token_type_hint'),
        kind: rt ? 'refresh_token' : at ? 'access_token' : 'unknown',
      });
      if (at && fake.quirks.refuseRevocation) return json(400, { error: 'unsupported_token_type' });
      if (rt) {
        if (fake.quirks.noRevocationCascade) {
          const f = families.get(rt.family);
          if (f) f.revoked = true;
        } else revokeFamily(rt.family);
      }
      if (at) at.revoked = true;
      res.writeHead(200).end();
      return;
    }
    if (url.pathname === '/device') {
      const { interval, expiresIn, verificationUri } = fake.device;
      return json(200, {
        device_code: token('dc'),
        user_code: 'WDJB-MJHT',
        verification_uri: verificationUri ?? `${fake.issuer}/activate`,
        verification_uri_complete: `${fake.issuer}/activate?user_code=WDJB-MJHT`,
        expires_in: expiresIn,
        ...(interval === undefined ? {} : { interval }),
      });
    }
    if (url.pathname !== '/token') return json(404, { error: 'not_found' });
    fake.counts.received++;
    if (fake.latencyMs > 0) {
      const drop = fake.dropAbandoned; // as set when the request arrived
      let gone = false;
      res.once('close', () => {
        gone = !res.writableFinished;
      });
      await new Promise((r) => setTimeout(r, fake.latencyMs));
      if (gone) fake.counts.abandoned++;
      if (gone && drop) return;
    }
    if (failures.left > 0) {
      failures.left--;
      fake.counts.failed++;
      return json(failures.status, { error: 'temporarily_unavailable' });
    }
    const invalidGrant = (why: string) => {
      fake.counts.invalidGrant++;
      const bare = fake.quirks.bareRefusals;
      if (bare && body.get('grant_type') === 'refresh_token') {
        res.writeHead(typeof bare === 'number' ? bare : 400).end();
        return;
      }
      return json(400, { error: 'invalid_grant', error_description: why });
    };
    switch (body.get('grant_type')) {
      case 'refresh_token': {
        fake.counts.refresh++;
        const rt = refreshTokens.get(body.get('refresh_token') ?? '');
        if (!rt) return invalidGrant('unknown refresh token');
        if (families.get(rt.family)?.revoked) return invalidGrant('grant revoked');
        if (rt.used && fake.refreshGraceMs > 0 && Date.now() - rt.usedAt <= fake.refreshGraceMs) {
          fake.counts.graceReuse++;
        } else if (rt.used) {
          fake.counts.reuseDetected++;
          revokeFamily(rt.family);
          return invalidGrant('refresh token reused; the grant is revoked');
        } else {
          rt.used = true;
          rt.usedAt = Date.now();
        }
        const issued = issueFamilyTokens(rt.family, fake.accessTokenTtl);
        if (fake.dropRate > 0 && Math.random() < fake.dropRate) {
          fake.counts.dropped++;
          res.destroy(); // rotated, and the answer never arrives
          return;
        }
        return json(200, issued);
      }
      case 'client_credentials': {
        fake.counts.clientCredentials++;
        const out: TokenResponseBody = {
          access_token: issueAccess(undefined, fake.accessTokenTtl),
          token_type: 'Bearer',
          expires_in: fake.accessTokenTtl,
        };
        const scope = body.get('scope');
        if (scope) out.scope = scope;
        return json(200, out);
      }
      case 'password': {
        fake.counts.password++;
        if (body.get('username') !== 'alice' || body.get('password') !== 'wonderland') {
          return invalidGrant('bad credentials');
        }
        return json(200, issueFamilyTokens(newFamily(), fake.accessTokenTtl, body.get('scope') ?? undefined));
      }
      case 'authorization_code': {
        fake.counts.authorizationCode++;
        if (body.get('code') !== 'good-code' || body.get('redirect_uri') !== 'http://127.0.0.1/callback') {
          return invalidGrant('bad code');
        }
        return json(200, { ...issueFamilyTokens(newFamily(), fake.accessTokenTtl), ref: { type: 'user', id: 7 } });
      }
      case 'urn:ietf:params:oauth:grant-type:token-exchange': {
        if (!body.get('subject_token')) return json(400, { error: 'invalid_request' });
        const out: TokenResponseBody & { id_token?: string; issued_token_type?: string } = {
          access_token: issueAccess(undefined, fake.accessTokenTtl),
          token_type: 'Bearer',
          expires_in: fake.accessTokenTtl,
          issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        };
        if (fake.quirks.deviceIdToken !== undefined) out.id_token = await idToken(fake.quirks.deviceIdToken);
        return json(200, out);
      }
      case 'urn:ietf:params:oauth:grant-type:device_code': {
        fake.devicePolls.push(Date.now());
        const answers = fake.device.answers;
        const answer = answers[Math.min(fake.counts.deviceCode++, answers.length - 1)];
        if (answer !== 'ok') return json(400, { error: answer, error_description: `device says ${answer}` });
        const issued: TokenResponseBody & { id_token?: string } = issueFamilyTokens(newFamily(), fake.accessTokenTtl);
        if (fake.quirks.deviceIdToken !== undefined) issued.id_token = await idToken(fake.quirks.deviceIdToken);
        return json(200, issued);
      }
      default:
        return json(400, { error: 'unsupported_grant_type' });
    }
  }

  /** An ID token for alice, signed with the server's key, or with another key (`forged`). */
  function idToken(how: 'valid' | 'forged'): Promise<string> {
    return new SignJWT({ email: 'alice@example.com' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(fake.issuer)
      .setAudience(clientId)
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(how === 'valid' ? signing.privateKey : forger.privateKey);
  }

  function authenticated(req: IncomingMessage, body: URLSearchParams): boolean {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const sent = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      // RFC 6749 §2.3.1 asks servers to form-decode the credentials; some compare them as sent.
      const [id, secret] = fake.quirks.basicUndecoded
        ? sent
        : sent.map((p) => decodeURIComponent(p.replace(/\+/g, ' ')));
      return id === clientId && secret === clientSecret;
    }
    if (body.has('client_secret'))
      return body.get('client_id') === clientId && body.get('client_secret') === clientSecret;
    return body.get('client_id') === 'public-client';
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  Object.assign(fake, {
    issuer: base,
    tokenEndpoint: `${base}/token`,
    revocationEndpoint: `${base}/revoke`,
    apiUrl: `${base}/api`,
    deviceEndpoint: `${base}/device`,
    jwksUri: `${base}/jwks`,
  });
  return fake;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      data += d;
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

/** A loopback port nobody listens on (bound, then released). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
