import * as oauth from 'oauth4webapi';
import { redactedCause, TokenkeeperError } from '../errors.js';
import { checkEndpoint, type EndpointOptions, networkReason, scrubUrls } from './oauth.js';

/**
 * Discovery of an authorization server's metadata (RFC 8414, OpenID Connect Discovery 1.0), from
 * `issuer` or from an explicit `discoveryUrl`; loaded on first use by the OAuth client. The
 * metadata's `issuer` must equal the one configured, and every endpoint it names is checked as
 * the configured ones are (https, or http on loopback).
 */
export async function discover(
  e: EndpointOptions,
  timeoutMs: number,
  insecure: boolean,
): Promise<oauth.AuthorizationServer> {
  const allow = e.allowInsecureHttp === true;
  const issuer = new URL(e.issuer as string);
  const base = e.fetch ?? fetch;
  let lastError: unknown;
  for (const algorithm of e.discoveryUrl === undefined ? (['oidc', 'oauth2'] as const) : (['given'] as const)) {
    try {
      const signal = AbortSignal.timeout(timeoutMs);
      const response =
        algorithm === 'given'
          ? await base(e.discoveryUrl as string, {
              headers: { accept: 'application/json' },
              redirect: 'manual',
              signal,
            })
          : await oauth.discoveryRequest(issuer, {
              algorithm,
              signal,
              [oauth.customFetch]: slashRedirects(base),
              ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
            });
      const as = await oauth.processDiscoveryResponse(issuer, response);
      if (as.token_endpoint === undefined) throw new Error('the metadata has no token_endpoint');
      checkEndpoint('the discovered token_endpoint', as.token_endpoint, allow);
      for (const name of [
        'revocation_endpoint',
        'authorization_endpoint',
        'device_authorization_endpoint',
        'jwks_uri',
      ] as const) {
        if (as[name] !== undefined) checkEndpoint(`the discovered ${name}`, as[name], allow);
      }
      return as;
    } catch (error) {
      if (error instanceof TokenkeeperError) throw error;
      lastError = error;
    }
  }
  const reason = scrubUrls(networkReason(lastError));
  const where = e.discoveryUrl === undefined ? `${issuer.origin}${issuer.pathname}` : scrubUrls(e.discoveryUrl);
  throw new TokenkeeperError(
    'TOKENKEEPER_DISCOVERY_FAILED',
    `Discovery of ${where} failed (${reason}). Check the issuer URL; give discoveryUrl when the server serves its metadata elsewhere, or tokenEndpoint (and jwksUri for OpenID Connect) to skip discovery.`,
    { cause: redactedCause(lastError, reason) },
  );
}

/**
 * A `fetch` for discovery that follows one redirect, and only to the same URL with a trailing
 * slash added (django-oauth-toolkit serves its metadata only there and answers 301 without it).
 * Any other redirect stays unfollowed, so metadata is never taken from somewhere else.
 */
function slashRedirects(base: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await base(input, init);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status > 399 || location === null) return response;
    const from = String(input instanceof Request ? input.url : input);
    let to: URL;
    try {
      to = new URL(location, from);
    } catch {
      return response;
    }
    const wanted = new URL(from);
    wanted.pathname += '/';
    if (to.href !== wanted.href) return response;
    await response.body?.cancel().catch(() => {});
    return base(to.href, init);
  };
}
