import { randomBytes } from 'node:crypto';
import { startJsonServer } from './json-server.js';

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
  const server = await startJsonServer(({ req, url, body, json }) => {
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
  return {
    baseUrl: server.base,
    clientId,
    clientSecret,
    counts,
    expire(accessToken: string) {
      access.delete(accessToken);
    },
    close: server.close,
  };
}
