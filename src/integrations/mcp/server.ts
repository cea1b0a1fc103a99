import type { OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { ClientOptions, EndpointOptions } from '../../session/oauth.js';

/** The authorization server's metadata, read as a plain object: the SDK's type lists neither revocation nor device endpoints. */
type Metadata = Record<string, unknown> & { issuer?: string; token_endpoint?: string; authorization_endpoint?: string };

/** The issuer a session of this authorization server and client is bound to, with the client: one manager each. */
export function serverKey(discovery: OAuthDiscoveryState, client: OAuthClientInformationMixed): string {
  const metadata = discovery.authorizationServerMetadata as Metadata | undefined;
  return `${metadata?.issuer ?? discovery.authorizationServerUrl} ${client.client_id}`;
}

/**
 * The options of the manager that renews and logs in at the authorization server the MCP server
 * named, as the client registered there: the endpoints discovery found (no second discovery, and
 * never another server's), and the client's authentication as registered.
 */
export function serverOptions(
  discovery: OAuthDiscoveryState,
  client: OAuthClientInformationMixed,
  allowInsecureHttp: boolean,
): EndpointOptions & { client: ClientOptions } {
  const metadata = discovery.authorizationServerMetadata as Metadata | undefined;
  const base = discovery.authorizationServerUrl.replace(/\/$/, '');
  const method = 'token_endpoint_auth_method' in client ? client.token_endpoint_auth_method : undefined;
  return {
    issuer: metadata?.issuer ?? discovery.authorizationServerUrl,
    tokenEndpoint: metadata?.token_endpoint ?? `${base}/token`,
    ...(typeof metadata?.revocation_endpoint === 'string' ? { revocationEndpoint: metadata.revocation_endpoint } : {}),
    authorizationEndpoint: metadata?.authorization_endpoint ?? `${base}/authorize`,
    ...(typeof metadata?.device_authorization_endpoint === 'string'
      ? { deviceAuthorizationEndpoint: metadata.device_authorization_endpoint }
      : {}),
    ...(allowInsecureHttp ? { allowInsecureHttp: true } : {}),
    client: {
      clientId: client.client_id,
      ...(client.client_secret ? { clientSecret: client.client_secret } : {}),
      ...(method === 'client_secret_post' || method === 'client_secret_basic' || method === 'none'
        ? { authMethod: method }
        : {}),
    },
  };
}
