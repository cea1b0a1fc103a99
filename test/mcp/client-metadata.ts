/** The MCP test client's registration metadata: a native app with a loopback redirect on any port. */
export const clientMetadata = {
  client_name: 'tokenkeeper mcp test',
  redirect_uris: ['http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  application_type: 'native',
};
