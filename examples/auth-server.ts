import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real OpenID Provider (oidc-provider) on 127.0.0.1, with refresh-token rotation on: the
 * authorization server of the demo and of the tests.
 * Refresh tokens are minted through its own models (no browser needed) and then used over the
 * real HTTP token endpoint.
 */
export interface RealAuthServer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Token endpoint requests by grant type, and how many failed. */
  counts: { refresh_token: number; client_credentials: number; errors: number; revocations: number };
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

export async function startRealAuthServer(options: { clientId?: string } = {}): Promise<RealAuthServer> {
  quietDevelopmentWarnings();
  const { default: Provider } = await import('oidc-provider');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = options.clientId ?? 'tokenkeeper-test';
  const clientSecret = 'a-secret-that-is-long-enough-for-hs256-0123456789';
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
        scope: 'openid offline_access api:read',
      },
    ],
    scopes: ['openid', 'offline_access', 'api:read'],
    features: {
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: false },
    },
    rotateRefreshToken: () => true,
    findAccount: async (_ctx: unknown, accountId: string) => ({ accountId, claims: async () => ({ sub: accountId }) }),
    ttl: { AccessToken: 3600, ClientCredentials: 3600, RefreshToken: 86400, Grant: 86400 },
  });
  const counts = { refresh_token: 0, client_credentials: 0, errors: 0, revocations: 0 };
  provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: string } } }) => {
    const type = ctx.oidc.params?.grant_type;
    if (type === 'refresh_token' || type === 'client_credentials') counts[type]++;
  });
  provider.on('grant.error', (ctx: { oidc: { params?: { grant_type?: string } } }) => {
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
    counts,
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
