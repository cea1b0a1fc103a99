import type { OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { TokenkeeperError } from '../../errors.js';

/**
 * Turns the SDK's pending token request into one that needs no server: its URL becomes a
 * `data:` URL holding `answer`, which `fetch` returns as a 200 JSON response, and the request's
 * parameters and credentials are emptied so nothing of them goes anywhere.
 *
 * Why: in SDK 1.32.2, `auth()` after a 401 always posts the refresh token from `tokens()` (or
 * starts a new login); no provider method skips that request. `addClientAuthentication` is
 * called with the request's own `URL` object just before it is sent, so the provider can renew
 * under the store's lock and hand its result to the SDK through the SDK's own response parsing.
 * If a later SDK passes a copy of the URL, the request goes out with the stand-in refresh token,
 * which a server refuses as unknown (no family is revoked) and the test suite catches.
 */
export function answerInPlace(url: string | URL, headers: Headers, params: URLSearchParams, answer: OAuthTokens): void {
  if (!(url instanceof URL)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'This version of the MCP SDK passes the token endpoint as a string: tokenkeeper/mcp cannot answer its refresh. Use @modelcontextprotocol/sdk 1.32.',
    );
  }
  const { issuer: _issuer, ...body } = answer as OAuthTokens & { issuer?: string };
  for (const name of [...params.keys()]) params.delete(name);
  headers.delete('authorization');
  url.href = `data:application/json,${encodeURIComponent(JSON.stringify(body))}`;
}

type Method = 'client_secret_basic' | 'client_secret_post' | 'none';

/**
 * Client authentication as the SDK applies it when a provider has no `addClientAuthentication`
 * (its `selectClientAuthMethod`): defining that hook replaces the SDK's own, so requests the
 * provider lets through (an authorization code the SDK redeems) are authenticated the same way.
 */
export function applyClientAuthentication(
  client: OAuthClientInformationMixed,
  supported: string[] | undefined,
  headers: Headers,
  params: URLSearchParams,
): void {
  const methods = supported ?? [];
  const secret = client.client_secret;
  const registered = 'token_endpoint_auth_method' in client ? client.token_endpoint_auth_method : undefined;
  let method: Method;
  if (
    (registered === 'client_secret_basic' || registered === 'client_secret_post' || registered === 'none') &&
    (methods.length === 0 || methods.includes(registered))
  ) {
    method = registered;
  } else if (methods.length === 0) {
    method = secret !== undefined ? 'client_secret_basic' : 'none';
  } else if (secret !== undefined && methods.includes('client_secret_basic')) {
    method = 'client_secret_basic';
  } else if (secret !== undefined && methods.includes('client_secret_post')) {
    method = 'client_secret_post';
  } else if (methods.includes('none')) {
    method = 'none';
  } else {
    method = secret !== undefined ? 'client_secret_post' : 'none';
  }
  if (method === 'client_secret_basic') {
    if (!secret) throw new TokenkeeperError('TOKENKEEPER_INVALID_CLIENT', 'client_secret_basic needs a client_secret.');
    headers.set('Authorization', `Basic ${btoa(`${client.client_id}:${secret}`)}`);
    return;
  }
  params.set('client_id', client.client_id);
  if (method === 'client_secret_post' && secret) params.set('client_secret', secret);
}
