import * as oauth from 'oauth4webapi';
import type { DpopSigner } from '../dpop-options.js';
import { authorizationResponseError, needEndpoint, type OAuthClient, type Obtained } from '../oauth.js';

// The code flow's requests (the authorization URL with PAR, the code exchange with its ID token
// validation), apart from OAuthClient so that browsers load them, and the oauth4webapi code
// behind them (JWT and JWKS validation), only with authorize()/callback(): see login/authorize.ts.

/**
 * The authorization request URL: PKCE and the rest are the caller's (see `login/authorize.ts`).
 * With `par` (default: when the server requires it), the parameters are pushed to the server
 * (RFC 9126) and the URL carries only the `request_uri` it answers.
 * @throws TokenkeeperError `TOKENKEEPER_INVALID_ARGUMENT` when the server lacks an endpoint it needs
 */
export async function authorizationUrl(
  client: OAuthClient,
  params: Record<string, string>,
  par?: boolean,
): Promise<URL> {
  const as = await client.server();
  const url = new URL(needEndpoint(as.authorization_endpoint, 'an authorization', 'authorizationEndpoint'));
  url.searchParams.set('client_id', client.client.client_id);
  if (par ?? as.require_pushed_authorization_requests === true) {
    needEndpoint(
      as.pushed_authorization_request_endpoint,
      'a pushed authorization request',
      'pushedAuthorizationRequestEndpoint',
    );
    const pushed = await client.endpoint(
      'pushed authorization request',
      (as, o, auth) => oauth.pushedAuthorizationRequest(as, client.client, auth, params, o),
      (as, response) => oauth.processPushedAuthorizationResponse(as, client.client, response),
    );
    url.searchParams.set('request_uri', pushed.request_uri);
    return url;
  }
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url;
}

/**
 * Completes an authorization code login from its callback parameters: checks them (`state`,
 * an error answer, `iss` against mix-up), redeems the code with its PKCE verifier once, and
 * validates the ID token (its JWKS signature, `iss`, `aud`, `exp`, `nonce`) when one comes back
 * or a nonce was sent. Resolves with the tokens (without the ID token) and the ID token's claims.
 */
export async function codeCallback(
  client: OAuthClient,
  parameters: URLSearchParams,
  expected: { state: string; redirectUri: string; codeVerifier: string; nonce?: string },
  dpop?: DpopSigner,
): Promise<Obtained> {
  const as = await client.server();
  let callback: URLSearchParams;
  try {
    callback = oauth.validateAuthResponse(as, client.client, parameters, expected.state);
  } catch (error) {
    throw authorizationResponseError(error);
  }
  const code = callback.get('code') ?? '';
  // The client validates the ID token's signature against the JWKS and keeps only its claims, as
  // for every grant; the nonce is checked here, while the response is read.
  return client.grant(
    'authorization_code',
    [code, expected.codeVerifier],
    (as, o, auth) =>
      oauth.authorizationCodeGrantRequest(
        as,
        client.client,
        auth,
        callback,
        expected.redirectUri,
        expected.codeVerifier,
        o,
      ),
    (as, response) =>
      oauth.processAuthorizationCodeResponse(as, client.client, response, {
        expectedNonce: expected.nonce ?? oauth.expectNoNonce,
        requireIdToken: expected.nonce !== undefined,
      }),
    dpop,
    true, // a code is redeemed once: never retried
  );
}
