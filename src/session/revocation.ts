import type { TokenSet } from '../token/token-set.js';
import type { DpopSigner } from './dpop-options.js';
import type { OAuthClient } from './oauth.js';
import type { LogoutResult, RevocationOutcome } from './session.js';

/**
 * Revokes a session's tokens at logout (RFC 7009): the refresh token, then the access token.
 * RFC 7009 §2.1 lets a server keep a refresh token's access tokens alive when the refresh token
 * is revoked, and some do (Glewlwyd), so the access token is revoked by name too unless it has
 * expired, or the server could not be reached for the refresh token a moment ago. Each outcome is
 * reported; a refusal or a failure goes to `onError` and is never thrown: the caller deletes the
 * session whatever the server says.
 */
export async function revokeAll(
  oauth: OAuthClient,
  tokens: TokenSet,
  signer: () => Promise<DpopSigner | undefined>,
  onError: (error: unknown) => void,
): Promise<LogoutResult> {
  const revoke = async (token: string, hint: 'refresh_token' | 'access_token'): Promise<RevocationOutcome> => {
    try {
      return (await oauth.revoke(token, hint, await signer())) ? 'revoked' : 'unsupported';
    } catch (error) {
      onError(error);
      const status = (error as { status?: unknown }).status;
      return typeof status === 'number' && status < 500 ? 'refused' : 'failed';
    }
  };
  const refreshToken: RevocationOutcome = tokens.refreshToken
    ? await revoke(tokens.refreshToken, 'refresh_token')
    : 'none';
  const accessToken: RevocationOutcome =
    refreshToken === 'unsupported' || refreshToken === 'failed'
      ? refreshToken // unreachable a moment ago: not a second wait for nothing
      : tokens.isExpired(0)
        ? 'expired'
        : await revoke(tokens.accessToken, 'access_token');
  const done = (o: RevocationOutcome) => o === 'revoked' || o === 'none' || o === 'expired';
  const revoked = done(refreshToken) && done(accessToken) && (refreshToken === 'revoked' || accessToken === 'revoked');
  return { revoked, refreshToken, accessToken };
}
