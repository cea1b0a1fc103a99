import type { OAuthClientInformationFull } from '@modelcontextprotocol/sdk/shared/auth.js';
import { TokenkeeperError } from '../../errors.js';
import { checkEndpoint, scrubUrls } from '../../session/oauth.js';

/**
 * Dynamic Client Registration (RFC 7591 §3): posts the client's metadata to the registration
 * endpoint and returns what the server registered. Called under the store's lock by the MCP
 * provider, so processes starting together register once, and only a complete answer is kept.
 *
 * @throws TokenkeeperError `TOKENKEEPER_INVALID_CLIENT` when the server refuses the
 *   registration (RFC 7591 §3.2.2) or answers without a `client_id`; `TOKENKEEPER_TOKEN_ENDPOINT`
 *   when it cannot be reached.
 */
export async function registerClient(
  endpoint: string,
  metadata: Record<string, unknown>,
  options: { fetch?: typeof fetch; allowInsecureHttp?: boolean; timeoutMs?: number } = {},
): Promise<OAuthClientInformationFull> {
  const url = checkEndpoint('registration_endpoint', endpoint, options.allowInsecureHttp === true);
  const send = options.fetch ?? globalThis.fetch;
  let response: Response;
  try {
    response = await send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(metadata),
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (error) {
    throw new TokenkeeperError(
      'TOKENKEEPER_TOKEN_ENDPOINT',
      `The registration endpoint ${url.origin}${url.pathname} could not be reached (${scrubUrls(String((error as Error)?.message ?? error))}). Nothing was stored; try again.`,
    );
  }
  const body = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      json = parsed as Record<string, unknown>;
  } catch {}
  if (!response.ok) {
    const said =
      typeof json?.error === 'string'
        ? `${json.error}${typeof json.error_description === 'string' ? `: ${json.error_description}` : ''}`
        : `HTTP ${response.status}`;
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_CLIENT',
      `The authorization server refused to register this client (${scrubUrls(said).slice(0, 300)}). Nothing was stored. ` +
        'Check clientMetadata (redirect_uris, grant_types, scope), or register the client by hand and give clientInformation.',
    );
  }
  if (json === undefined || typeof json.client_id !== 'string' || json.client_id === '') {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_CLIENT',
      `The registration endpoint ${url.origin}${url.pathname} answered without a client_id (RFC 7591 §3.2.1). Nothing was stored.`,
    );
  }
  if (json.client_secret !== undefined && typeof json.client_secret !== 'string') {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_CLIENT',
      `The registration endpoint ${url.origin}${url.pathname} answered a client_secret that is not a string. Nothing was stored.`,
    );
  }
  return { ...metadata, ...json } as OAuthClientInformationFull;
}
