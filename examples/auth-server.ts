import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real OpenID Provider (oidc-provider) on 127.0.0.1, with refresh-token rotation on: the
 * authorization server of the demo and of the tests.
 * Refresh tokens are minted through its own models (no browser needed) and then used over the
 * real HTTP token endpoint. Its own login and consent pages (any login name and password) serve
 * the authorization code and device flows.
 */
export interface RealAuthServer {
  issuer: string;
  /** A confidential client (`client_secret_basic`) with every grant, loopback redirect URIs. */
  clientId: string;
  clientSecret: string;
  /** A public client (no secret: a single-page app or a CLI), with the same grants but client credentials. */
  publicClientId: string;
  /** A client that authenticates with `private_key_jwt`, signing with {@link privateKeyJwk}. */
  privateKeyClientId: string;
  privateKeyJwk: JsonWebKey;
  /** A public client whose tokens must be DPoP-bound (`dpop_bound_access_tokens`). */
  dpopClientId: string;
  /** A client that authenticates with `client_secret_jwt`, with {@link clientSecret}. */
  secretJwtClientId: string;
  /** Token endpoint requests by grant type, and how many failed. */
  counts: {
    refresh_token: number;
    client_credentials: number;
    authorization_code: number;
    device_code: number;
    token_exchange: number;
    errors: number;
    revocations: number;
    /** Token requests answered `use_dpop_nonce` (a proof without the server's nonce): not processed. */
    dpopNonceChallenges: number;
  };
  /** Ends an access token at the server now (as if it had expired): APIs answer 401 to it. */
  expireAccessToken(token: string): Promise<void>;
  /** A refresh token for a new grant of `accountId`, as after an interactive login. */
  mintRefreshToken(accountId?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * oidc-provider warns about its development defaults (in-memory adapter, built-in keys, Node 20)
 * on every start; they are what a test server wants, so keep them off the console.
 */
function quietDevelopmentWarnings(): void {
  for (const level of ['warn', 'info'] as const) {
    const original = console[level];
    if ((original as { quiet?: boolean }).quiet) continue;
    const filtered = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && /oidc-provider (WARNING|NOTICE)/.test(args[0])) return;
      original.apply(console, args);
    };
    (filtered as { quiet?: boolean }).quiet = true;
    console[level] = filtered;
  }
}

export interface RealAuthServerOptions {
  clientId?: string;
  /** Redirect URIs of the public client beyond loopback ones (a single-page app's page). */
  publicRedirectUris?: string[];
}

const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export async function startRealAuthServer(options: RealAuthServerOptions = {}): Promise<RealAuthServer> {
  quietDevelopmentWarnings();
  const { default: Provider, errors } = await import('oidc-provider');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = options.clientId ?? 'tokenkeeper-test';
  const clientSecret = 'a-secret-that-is-long-enough-for-hs256-0123456789';
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privateKeyJwk = { ...keys.privateKey.export({ format: 'jwk' }), kid: 'client-key-1', alg: 'ES256' };
  const publicKeyJwk = { ...keys.publicKey.export({ format: 'jwk' }), kid: 'client-key-1', alg: 'ES256', use: 'sig' };
  const grantTypes = ['authorization_code', 'refresh_token', DEVICE_CODE, TOKEN_EXCHANGE];
  // Native clients: any port on 127.0.0.1 matches a registered loopback redirect URI (RFC 8252 §7.3).
  const native = {
    application_type: 'native' as const,
    response_types: ['code' as const],
    redirect_uris: ['http://127.0.0.1/callback', 'http://127.0.0.1/auth/callback'],
    // Where RP-initiated logout may send the browser back (session.endSessionUrl()).
    post_logout_redirect_uris: ['http://127.0.0.1/signed-out'],
    scope: 'openid offline_access api:read',
  };
  const provider = new Provider(issuer, {
    clients: [
      {
        ...native,
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: [...grantTypes, 'client_credentials'],
      },
      {
        ...native,
        client_id: 'tokenkeeper-public',
        token_endpoint_auth_method: 'none',
        grant_types: grantTypes,
        redirect_uris: [...native.redirect_uris, ...(options.publicRedirectUris ?? [])],
      },
      {
        ...native,
        client_id: 'tokenkeeper-dpop',
        token_endpoint_auth_method: 'none',
        dpop_bound_access_tokens: true,
        grant_types: grantTypes,
        redirect_uris: [...native.redirect_uris, ...(options.publicRedirectUris ?? [])],
      },
      {
        ...native,
        client_id: 'tokenkeeper-private-key',
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [publicKeyJwk] },
        grant_types: [...grantTypes, 'client_credentials'],
      },
      {
        ...native,
        client_id: 'tokenkeeper-secret-jwt',
        client_secret: clientSecret,
        token_endpoint_auth_method: 'client_secret_jwt',
        grant_types: [...grantTypes, 'client_credentials'],
      },
    ],
    scopes: ['openid', 'offline_access', 'api:read'],
    features: {
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      deviceFlow: { enabled: true },
      devInteractions: { enabled: true },
      // DPoP (RFC 9449) with server nonces required, as FAPI 2.0 and AT Protocol servers do.
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    },
    rotateRefreshToken: () => true,
    findAccount: async (_ctx: unknown, accountId: string) => ({
      accountId,
      claims: async () => ({ sub: accountId }),
    }),
    ttl: {
      AccessToken: 3600,
      ClientCredentials: 3600,
      RefreshToken: 86400,
      Grant: 86400,
      DeviceCode: 600,
      Interaction: 600,
      Session: 3600,
    },
  });
  // Token exchange (RFC 8693), which oidc-provider leaves to the deployment: an access token of
  // this server is exchanged for a new one for the calling client, bound to the same account.
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx: { oidc: { params: Record<string, string | undefined>; client: unknown }; body: unknown }) => {
      const { subject_token: subject, subject_token_type: type } = ctx.oidc.params;
      if (type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('subject_token_type must be an access token');
      const found =
        (await provider.AccessToken.find(subject as string)) ??
        (await provider.ClientCredentials.find(subject as string));
      if (!found) throw new errors.InvalidGrant('subject_token is not valid');
      const token = new provider.ClientCredentials({
        client: ctx.oidc.client as InstanceType<typeof provider.Client>,
        scope: 'api:read',
      });
      const value = await token.save();
      ctx.body = {
        access_token: value,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: token.expiration,
        scope: 'api:read',
      };
    },
    ['subject_token', 'subject_token_type', 'audience', 'resource', 'requested_token_type', 'scope'],
  );
  const counts = {
    refresh_token: 0,
    client_credentials: 0,
    authorization_code: 0,
    device_code: 0,
    token_exchange: 0,
    errors: 0,
    revocations: 0,
    dpopNonceChallenges: 0,
  };
  const counted: Record<string, keyof typeof counts> = {
    refresh_token: 'refresh_token',
    client_credentials: 'client_credentials',
    authorization_code: 'authorization_code',
    [DEVICE_CODE]: 'device_code',
    [TOKEN_EXCHANGE]: 'token_exchange',
  };
  provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: string } } }) => {
    const type = counted[ctx.oidc.params?.grant_type ?? ''];
    if (type !== undefined) counts[type]++;
  });
  provider.on('grant.error', (ctx: { oidc: { params?: { grant_type?: string } } }, error: { error?: string }) => {
    // A request without the DPoP nonce is answered before the grant is looked at: not an attempt.
    if (error?.error === 'use_dpop_nonce') {
      counts.dpopNonceChallenges++;
      return;
    }
    counts.errors++;
    if (ctx.oidc.params?.grant_type === 'refresh_token') counts.refresh_token++;
  });
  provider.use(async (ctx: { method: string; path: string; status: number }, next: () => Promise<void>) => {
    await next();
    if (ctx.method === 'POST' && ctx.path === '/token/revocation' && ctx.status === 200) counts.revocations++;
  });
  server.on('request', provider.callback());

  return {
    issuer,
    clientId,
    clientSecret,
    publicClientId: 'tokenkeeper-public',
    privateKeyClientId: 'tokenkeeper-private-key',
    privateKeyJwk,
    dpopClientId: 'tokenkeeper-dpop',
    secretJwtClientId: 'tokenkeeper-secret-jwt',
    counts,
    async expireAccessToken(token) {
      await (await provider.AccessToken.find(token))?.destroy();
    },
    async mintRefreshToken(accountId = 'alice') {
      const grant = new provider.Grant({ accountId, clientId });
      grant.addOIDCScope('openid offline_access');
      const grantId = await grant.save();
      const client = await provider.Client.find(clientId);
      if (!client) throw new Error(`oidc-provider lost client ${clientId}`);
      const rt = new provider.RefreshToken({
        accountId,
        client,
        grantId,
        scope: 'openid offline_access',
        gty: 'authorization_code',
        authTime: Math.floor(Date.now() / 1000),
      });
      return rt.save();
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
