import { TokenkeeperError } from '../errors.js';
import type { Session } from './session.js';

/** `session.userinfo()`: see {@link Session.userinfo}. */
export async function userinfoOf(
  session: Session,
  endpoint: string,
): Promise<Record<string, unknown> & { sub: string }> {
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
