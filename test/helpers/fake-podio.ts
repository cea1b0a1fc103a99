import { randomBytes } from 'node:crypto';
import { startJsonServer } from './json-server.js';

/**
 * The part of the Podio API podio-js 1.6.1 uses, on 127.0.0.1: `POST /oauth/token`
 * (form-encoded: app, password and refresh_token grants; refresh tokens rotate, a used one is
 * refused) and `GET /item/:id`, which wants `Authorization: OAuth2 <token>` and answers 401
 * `invalid_token` otherwise, as Podio does.
 */
export async function startFakePodio() {
  const clientId = 'podio-client';
  const clientSecret = 'podio-secret';
  const access = new Set<string>();
  const refresh = new Map<string, boolean>(); // token -> used
  const counts = { token: 0, refresh: 0, invalidGrant: 0, api: 0, unauthorized: 0 };
  /** How long a refresh takes to answer (ms): a slow Podio. */
  const slow = { refreshMs: 0 };
  const issue = () => {
    const at = `pat-${randomBytes(9).toString('base64url')}`;
    const rt = `prt-${randomBytes(9).toString('base64url')}`;
    access.add(at);
    refresh.set(rt, false);
    return {
      access_token: at,
      refresh_token: rt,
      expires_in: 28800,
      token_type: 'bearer',
      ref: { type: 'app', id: 42 },
      scope: 'app:all',
    };
  };
  const server = await startJsonServer(async ({ req, url, body, json }) => {
    if (req.method === 'POST' && url.pathname === '/oauth/token') {
      counts.token++;
      const p = new URLSearchParams(body);
      if (p.get('client_id') !== clientId || p.get('client_secret') !== clientSecret) {
        return json(401, { error: 'invalid_client', error_description: 'bad client' });
      }
      const grant = p.get('grant_type');
      if (grant === 'app' && p.get('app_id') === '42' && p.get('app_token') === 'app-token') return json(200, issue());
      if (grant === 'refresh_token') {
        counts.refresh++;
        if (slow.refreshMs > 0) await new Promise((r) => setTimeout(r, slow.refreshMs));
        const rt = p.get('refresh_token') ?? '';
        if (refresh.get(rt) !== false) {
          counts.invalidGrant++;
          return json(400, { error: 'invalid_grant', error_description: 'refresh token used or unknown' });
        }
        refresh.set(rt, true);
        return json(200, issue());
      }
      counts.invalidGrant++;
      return json(400, { error: 'invalid_grant', error_description: 'bad credentials' });
    }
    if (req.method === 'GET' && url.pathname.startsWith('/item/')) {
      counts.api++;
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('OAuth2 ') || !access.has(auth.slice(7))) {
        counts.unauthorized++;
        return json(401, { error: 'invalid_token', error_description: 'expired_token' });
      }
      return json(200, { item_id: Number(url.pathname.split('/')[2]), title: 'An item' });
    }
    json(404, { error: 'not_found' });
  });
  const apiURL = server.base;
  return {
    apiURL,
    clientId,
    clientSecret,
    counts,
    slow,
    /** Makes the server forget an access token, as when it expires. */
    expire(accessToken: string) {
      access.delete(accessToken);
    },
    close: server.close,
  };
}
