import { TokenkeeperError } from '../errors.js';
import type { EndSessionOptions, Session } from './session.js';

// Session's OpenID Connect calls, loaded on first use (see Session.userinfo, Session.endSessionUrl).

type Oidc = { userinfoEndpoint?: string; endSessionEndpoint?: string; clientId: string };

/** `session.userinfo()`: see {@link Session.userinfo}. */
export async function userinfoOf(session: Session, oidc: Oidc): Promise<Record<string, unknown> & { sub: string }> {
  const endpoint = oidc.userinfoEndpoint;
  if (endpoint === undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'session.userinfo(): the server names no userinfo_endpoint: give the manager an issuer whose discovery document has one.',
    );
  }
  const response = await session.fetch(endpoint, { headers: { accept: 'application/json' } });
  const fail = (why: string) =>
    new TokenkeeperError(
      'TOKENKEEPER_USERINFO',
      `The userinfo endpoint ${why} for session ${JSON.stringify(session.id)}.`,
    );
  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    const scope =
      response.status === 401 || response.status === 403 ? ' (does the session have the openid scope?)' : '';
    throw fail(`answered ${response.status}${scope}`);
  }
  if (!/^application\/json\b/i.test(response.headers.get('content-type') ?? '')) {
    await response.body?.cancel().catch(() => {});
    throw fail('did not answer JSON (signed or encrypted userinfo is not supported)');
  }
  let claims: unknown;
  try {
    claims = await response.json();
  } catch {
    throw fail('answered JSON that does not parse');
  }
  const sub = (claims as { sub?: unknown } | null)?.sub;
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims) || typeof sub !== 'string') {
    throw fail('answered no claims with a sub');
  }
  // OpenID Connect Core §5.3.2: the claims must be the ID token's user's.
  const expected = session.claims?.sub;
  if (expected !== undefined && expected !== sub) throw fail("answered the claims of another user than the ID token's");
  return claims as Record<string, unknown> & { sub: string };
}

/** `session.endSessionUrl()`: see {@link Session.endSessionUrl}. */
export function endSessionUrlOf(oidc: Oidc, options: EndSessionOptions): string {
  if (oidc.endSessionEndpoint === undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'session.endSessionUrl(): the server names no end_session_endpoint (RP-initiated logout): give the manager an issuer whose discovery document has one.',
    );
  }
  const url = new URL(oidc.endSessionEndpoint);
  url.searchParams.set('client_id', oidc.clientId);
  const { postLogoutRedirectUri, state } = options;
  if (postLogoutRedirectUri !== undefined) {
    if (typeof postLogoutRedirectUri !== 'string' || !URL.canParse(postLogoutRedirectUri)) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        'endSessionUrl(): postLogoutRedirectUri must be an absolute URL, as registered at the server.',
      );
    }
    url.searchParams.set('post_logout_redirect_uri', postLogoutRedirectUri);
  }
  if (state !== undefined) url.searchParams.set('state', String(state));
  return url.href;
}
