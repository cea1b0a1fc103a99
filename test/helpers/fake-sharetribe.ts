import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The part of Sharetribe's APIs the integration SDK 1.14.1 uses, on 127.0.0.1:
 * `POST /v1/auth/token` (client credentials; refresh tokens rotate, a used one is refused),
 * `POST /v1/auth/revoke`, and `GET /v1/integration_api/marketplace/show` with a Bearer token.
 */
export async function startFakeSharetribe() {
  const clientId = 'st-client';
  const clientSecret = 'st-secret';
  const access = new Set<string>();
  const refresh = new Map<string, boolean>();
  const counts = { clientCredentials: 0, refresh: 0, invalidGrant: 0, revoke: 0, api: 0 };
  const issue = () => {
    const at = `sat-${randomBytes(9).toString('base64url')}`;
    const rt = `srt-${randomBytes(9).toString('base64url')}`;
    access.add(at);
    refresh.set(rt, false);
    return { access_token: at, refresh_token: rt, token_type: 'bearer', expires_in: 86400, scope: 'integ' };
  };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const json = (status: number, data: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(data));
      };
      const url = new URL(req.url ?? '/', 'http://x');
      const p = new URLSearchParams(body);
      if (req.method === 'POST' && url.pathname === '/v1/auth/token') {
        if (p.get('client_id') !== clientId) return json(401, { error: 'invalid_client' });
        if (p.get('grant_type') === 'client_credentials') {
          counts.clientCredentials++;
          if (p.get('client_secret') !== clientSecret) return json(401, { error: 'invalid_client' });
          return json(200, issue());
        }
        if (p.get('grant_type') === 'refresh_token') {
          counts.refresh++;
          const rt = p.get('refresh_token') ?? '';
          if (refresh.get(rt) !== false) {
            counts.invalidGrant++;
            return json(401, { error: 'invalid_grant' });
          }
          refresh.set(rt, true);
          return json(200, issue());
        }
        return json(400, { error: 'unsupported_grant_type' });
      }
      if (req.method === 'POST' && url.pathname === '/v1/auth/revoke') {
        counts.revoke++;
        const t = p.get('token') ?? '';
        refresh.set(t, true);
        return json(200, { action: 'revoked' });
      }
      if (url.pathname === '/v1/integration_api/marketplace/show') {
        counts.api++;
        const auth = req.headers.authorization ?? '';
        if (!auth.toLowerCase().startsWith('bearer ') || !access.has(auth.slice(7)))
          return json(401, { errors: [{ status: 401 }] });
        return json(200, { data: { id: 'm-1', type: 'marketplace', attributes: { name: 'Fake market' } } });
      }
      json(404, { error: `no ${req.method} ${url.pathname}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clientId,
    clientSecret,
    counts,
    expire(accessToken: string) {
      access.delete(accessToken);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
