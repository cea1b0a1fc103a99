import type { OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientMetadata } from '@modelcontextprotocol/sdk/shared/auth.js';
import { isTokenkeeperError, TokenkeeperError } from '../../errors.js';
import type { SessionManager } from '../../session/manager.js';
import type { McpAuthProviderOptions } from './provider.js';

/** `mcpAuthProvider` and its options, checked. */
export function checkOptions(manager: SessionManager, options: McpAuthProviderOptions): void {
  const fail = (why: string) => new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', `mcpAuthProvider(): ${why}.`);
  if (typeof manager !== 'object' || manager === null || typeof manager._forServer !== 'function') {
    throw fail('the first argument must be a SessionManager');
  }
  if (typeof options !== 'object' || options === null) throw fail('options must be an object');
  if (typeof options.clientMetadata !== 'object' || options.clientMetadata === null) {
    throw fail('clientMetadata is required (what Dynamic Client Registration sends)');
  }
  if (options.onRedirect !== undefined && typeof options.onRedirect !== 'function')
    throw fail('onRedirect must be a function');
  if (options.grant !== undefined && options.grant !== 'authorization_code' && options.grant !== 'client_credentials') {
    throw fail('grant must be authorization_code or client_credentials');
  }
  if (options.grant === 'client_credentials' && options.clientInformation === undefined) {
    throw fail(
      'the client_credentials grant needs clientInformation (a client_id and client_secret registered at the server)',
    );
  }
  if (options.clientMetadataUrl !== undefined && !isDocumentUrl(options.clientMetadataUrl)) {
    throw fail('clientMetadataUrl must be an https URL with a path (a Client ID Metadata Document)');
  }
  if (options.clientInformation !== undefined && typeof options.clientInformation?.client_id !== 'string') {
    throw fail('clientInformation.client_id must be a string');
  }
}

/** The MCP server URL as a key: no query, no fragment, no trailing slash on the path. */
export function canonicalServerUrl(value: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'mcpAuthProvider(): serverUrl must be an absolute URL.');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'mcpAuthProvider(): serverUrl must be an http(s) URL.');
  }
  if (url.username !== '' || url.password !== '') {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'mcpAuthProvider(): serverUrl must not carry credentials.',
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * An MCP server without protected resource metadata (RFC 9728) names no authorization server:
 * the SDK then asks the server's own origin for metadata. If that metadata sends us to another
 * origin, nobody vouched for it: refused, before anything is stored.
 */
export function checkDiscovery(serverUrl: string, state: OAuthDiscoveryState): void {
  if (state.resourceMetadata !== undefined) return;
  const origin = new URL(serverUrl).origin;
  const metadata = state.authorizationServerMetadata;
  const named = [
    state.authorizationServerUrl,
    metadata?.issuer,
    metadata?.token_endpoint,
    metadata?.authorization_endpoint,
    metadata?.registration_endpoint,
  ].filter((u): u is string => typeof u === 'string');
  const foreign = named.find((u) => {
    try {
      return new URL(u).origin !== origin;
    } catch {
      return true;
    }
  });
  if (foreign !== undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_DISCOVERY_FAILED',
      `The MCP server ${serverUrl} publishes no protected resource metadata (RFC 9728), and the authorization server metadata at its origin points to ${new URL(foreign).origin}. ` +
        'Tokens are sent only to an authorization server the MCP server names: fix the server, or ask its operator. Nothing was stored.',
    );
  }
}

export function sameIssuer(stamped: string | undefined, discovery: OAuthDiscoveryState): boolean {
  if (stamped === undefined) return true; // registered by hand or by an older SDK: the SDK binds it on first use
  const strip = (u: string) => u.replace(/\/$/, '');
  return strip(stamped) === strip(discovery.authorizationServerUrl);
}

/** The scope the SDK would ask for (SEP-835): the server's advertised scopes, else the client's. */
export function scopeOf(discovery: OAuthDiscoveryState, metadata: OAuthClientMetadata): string | undefined {
  // The server's scopes, and the client's own (`offline_access`, which most servers need before
  // they issue a refresh token).
  const scopes = new Set([
    ...(discovery.resourceMetadata?.scopes_supported ?? []),
    ...(metadata.scope?.split(' ').filter((s) => s !== '') ?? []),
  ]);
  return scopes.size === 0 ? undefined : [...scopes].join(' ');
}

/** Errors after which the session needs a new login (the SDK then starts one). */
export function endsSession(error: unknown): boolean {
  return (
    isTokenkeeperError(error, 'TOKENKEEPER_REAUTH_REQUIRED') || isTokenkeeperError(error, 'TOKENKEEPER_NO_SESSION')
  );
}

function isDocumentUrl(value: unknown): boolean {
  try {
    const url = new URL(String(value));
    return typeof value === 'string' && url.protocol === 'https:' && url.pathname !== '/';
  } catch {
    return false;
  }
}
