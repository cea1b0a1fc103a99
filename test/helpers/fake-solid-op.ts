import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startJsonServer } from './json-server.js';

/**
 * A small OpenID provider on 127.0.0.1 for `@inrupt/solid-client-authn-node`: discovery, JWKS,
 * and a token endpoint whose refresh-token grant rotates strictly and returns an ES256
 * `id_token` with `iss`, `aud`, `sub`, `webid`, `iat`, `exp`.
 */
export async function startFakeSolidOp() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const clientId = 'solid-app';
  const clientSecret = 'solid-secret';
  const refresh = new Map<string, { used: boolean; webid: string }>();
  const counts = { refresh: 0, invalidGrant: 0 };
  let issuer = '';

  const mint = (webid: string) => {
    const rt = `srt-${randomBytes(9).toString('base64url')}`;
    refresh.set(rt, { used: false, webid });
    return rt;
  };
  const server = await startJsonServer(async ({ req, url, body, json }) => {
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, {
        issuer,
        authorization_endpoint: `${issuer}authorize`,
        token_endpoint: `${issuer}token`,
        jwks_uri: `${issuer}jwks`,
        registration_endpoint: `${issuer}register`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        scopes_supported: ['openid', 'offline_access', 'webid'],
        claims_supported: ['sub', 'webid', 'iss', 'aud', 'iat', 'exp'],
      });
    }
    if (url.pathname === '/jwks') return json(200, { keys: [jwk] });
    if (url.pathname === '/token' && req.method === 'POST') {
      const auth = req.headers.authorization ?? '';
      const [id, secret] = Buffer.from(auth.replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':')
        .map(decodeURIComponent);
      if (id !== clientId || secret !== clientSecret) return json(401, { error: 'invalid_client' });
      const p = new URLSearchParams(body);
      if (p.get('grant_type') !== 'refresh_token') return json(400, { error: 'unsupported_grant_type' });
      counts.refresh++;
      const old = refresh.get(p.get('refresh_token') ?? '');
      if (!old || old.used) {
        counts.invalidGrant++;
        return json(400, { error: 'invalid_grant' });
      }
      old.used = true;
      const idToken = await new SignJWT({ webid: old.webid })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(clientId)
        .setSubject(old.webid)
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey);
      return json(200, {
        access_token: `sat-${randomBytes(9).toString('base64url')}`,
        id_token: idToken,
        refresh_token: mint(old.webid),
        token_type: 'Bearer',
        expires_in: 3600,
        scope: 'openid offline_access webid',
      });
    }
    json(404, { error: 'not_found' });
  });
  issuer = `${server.base}/`;
  return {
    issuer,
    clientId,
    clientSecret,
    counts,
    /** A refresh token for `webid`, as after an interactive login. */
    mintRefreshToken: (webid = 'https://pod.example/alice#me') => mint(webid),
    close: server.close,
  };
}
