// A real MCP server (the SDK's McpServer behind its bearer-auth middleware, with RFC 9728
// protected resource metadata) and a real authorization server (oidc-provider with dynamic
// registration, refresh-token rotation and reuse detection), both on 127.0.0.1.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import {
  getOAuthProtectedResourceMetadataUrl,
  mcpAuthMetadataRouter,
} from '@modelcontextprotocol/sdk/server/auth/router.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express from 'express';
import { z } from 'zod';

export interface McpAuthServer {
  issuer: string;
  /** Token requests by grant type, failures, registrations; refresh times (ms since the epoch). */
  counts: {
    refresh_token: number;
    authorization_code: number;
    client_credentials: number;
    device_code: number;
    errors: number;
    invalidGrants: number;
    registrations: number;
    refreshedAt: number[];
  };
  /** Ends an access token now: the MCP server answers 401 to it. */
  revokeAccessToken(token: string): Promise<void>;
  close(): Promise<void>;
}

export interface McpTestServer {
  url: string;
  /** Access tokens the MCP server saw, newest last. */
  seen: string[];
  /** Tool calls answered. */
  calls: number;
  close(): Promise<void>;
}

const quiet = () => {
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
};

const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

const closing = (server: Server) => () =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

// biome-ignore lint/suspicious/noExplicitAny: oidc-provider's instance, typed loosely on purpose
type Provider = any;

export async function startAuthServer(
  options: { accessTokenTtlS?: number; registration?: boolean; clients?: Record<string, unknown>[] } = {},
): Promise<McpAuthServer & { provider: Provider }> {
  quiet();
  const { default: Provider } = await import('oidc-provider');
  const server = createServer();
  const issuer = await listen(server);
  const provider = new Provider(issuer, {
    clients: (options.clients ?? []) as never,
    scopes: ['openid', 'offline_access', 'mcp:tools'],
    features: {
      registration: { enabled: options.registration !== false },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: true },
      // RFC 8707, as MCP clients use it: tokens are issued for the MCP server named by `resource`,
      // and a refresh without `resource` keeps the one granted.
      resourceIndicators: {
        enabled: true,
        useGrantedResource: () => true,
        defaultResource: () => undefined,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (!resource.startsWith('http://127.0.0.1:')) throw new Error('unknown resource');
          return { scope: 'mcp:tools', audience: resource, accessTokenFormat: 'opaque' };
        },
      },
    },
    rotateRefreshToken: () => true,
    // A refresh token for every code: the MCP scopes carry no offline_access.
    issueRefreshToken: async () => true,
    findAccount: async (_ctx: unknown, accountId: string) => ({ accountId, claims: async () => ({ sub: accountId }) }),
    ttl: {
      AccessToken: options.accessTokenTtlS ?? 3600,
      ClientCredentials: options.accessTokenTtlS ?? 3600,
      RefreshToken: 86400,
      Grant: 86400,
      DeviceCode: 600,
      Interaction: 600,
      Session: 3600,
    },
  });
  const counts: McpAuthServer['counts'] = {
    refresh_token: 0,
    authorization_code: 0,
    client_credentials: 0,
    device_code: 0,
    errors: 0,
    invalidGrants: 0,
    registrations: 0,
    refreshedAt: [],
  };
  const names: Record<string, keyof McpAuthServer['counts']> = {
    refresh_token: 'refresh_token',
    authorization_code: 'authorization_code',
    client_credentials: 'client_credentials',
    'urn:ietf:params:oauth:grant-type:device_code': 'device_code',
  };
  provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: string } } }) => {
    const name = names[ctx.oidc.params?.grant_type ?? ''];
    if (name !== undefined) (counts[name] as number)++;
    if (name === 'refresh_token') counts.refreshedAt.push(Date.now());
  });
  provider.on('grant.error', (_ctx: unknown, error: { error?: string }) => {
    if (error?.error === 'authorization_pending') return;
    counts.errors++;
    if (error?.error === 'invalid_grant') counts.invalidGrants++;
  });
  provider.on('registration_create.success', () => {
    counts.registrations++;
  });
  provider.on('server_error', (_ctx: unknown, error: Error) => console.error('oidc-provider:', error));
  server.on('request', provider.callback());
  return {
    issuer,
    provider,
    counts,
    async revokeAccessToken(token) {
      await (await provider.AccessToken.find(token))?.destroy();
    },
    close: closing(server),
  };
}

/**
 * The MCP server: one tool, `echo`, behind the SDK's bearer-auth middleware, which checks each
 * access token with the authorization server. `prm: false` drops the protected resource
 * metadata and serves, at its own origin, authorization server metadata naming `as`.
 */
export async function startMcpServer(
  as: McpAuthServer & { provider: Provider },
  options: { prm?: boolean } = {},
): Promise<McpTestServer> {
  const app = express();
  const server = createServer(app);
  const origin = await listen(server);
  const url = `${origin}/mcp`;
  const state: McpTestServer = { url, seen: [], calls: 0, close: closing(server) };
  const metadata = await (await fetch(`${as.issuer}/.well-known/openid-configuration`)).json();
  if (options.prm === false) {
    app.get('/.well-known/oauth-authorization-server', (_req, res) => {
      res.json(metadata);
    });
  } else {
    app.use(
      mcpAuthMetadataRouter({
        oauthMetadata: metadata,
        resourceServerUrl: new URL(url),
        scopesSupported: ['mcp:tools'],
      }),
    );
  }
  const bearer = requireBearerAuth({
    verifier: {
      async verifyAccessToken(token: string) {
        const found = (await as.provider.AccessToken.find(token)) ?? (await as.provider.ClientCredentials.find(token));
        if (!found || found.isExpired) throw new InvalidTokenError('The access token is not valid');
        if (state.seen.at(-1) !== token) state.seen.push(token);
        return { token, clientId: found.clientId, scopes: String(found.scope ?? '').split(' '), expiresAt: found.exp };
      },
    },
    ...(options.prm === false ? {} : { resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(new URL(url)) }),
  });
  app.post('/mcp', express.json(), bearer, async (req, res) => {
    const mcp = new McpServer({ name: 'tokenkeeper-test', version: '1.0.0' });
    mcp.tool('echo', { text: z.string() }, async (args) => {
      state.calls++;
      return { content: [{ type: 'text' as const, text: String(args.text ?? '') }] };
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close().catch(() => {});
      mcp.close().catch(() => {});
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.get('/mcp', (_req, res) => {
    res.status(405).end();
  });
  return state;
}

/**
 * Goes through oidc-provider's login and consent pages from `url` with plain HTTP (any login
 * name is accepted), and follows the last redirect to the client's loopback listener.
 */
export async function approve(url: string, login = 'alice'): Promise<void> {
  const jar = new Map<string, string>();
  let next: { url: string; init?: RequestInit } | undefined = { url };
  for (let step = 0; step < 20 && next !== undefined; step++) {
    const res: Response = await fetch(next.url, {
      ...next.init,
      redirect: 'manual',
      headers: {
        ...(next.init?.headers as Record<string, string>),
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
      },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [k, ...v] = (pair as string).split('=');
      jar.set((k as string).trim(), v.join('='));
    }
    const base: string = next.url;
    next = undefined;
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      next = { url: new URL(location, base).href };
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (res.status === 200 && action !== undefined) {
      const body = new URLSearchParams();
      for (const input of html.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
        const name = /name="([^"]+)"/.exec(input[0])?.[1];
        if (name !== undefined) body.set(name, /value="([^"]*)"/.exec(input[0])?.[1] ?? '');
      }
      if (/name="login"/.test(html)) body.set('login', login);
      if (/name="password"/.test(html)) body.set('password', 'any password');
      next = {
        url: new URL(action, base).href,
        init: { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      };
    } else if (res.status >= 400) {
      throw new Error(
        `the sign-in stopped at ${new URL(base).pathname} with HTTP ${res.status}: ${html.slice(0, 300)}`,
      );
    }
  }
}
