/**
 * `tokenkeeper/mcp`: an `OAuthClientProvider` for the Model Context Protocol SDK
 * (`@modelcontextprotocol/sdk`, tested with 1.32.2) that keeps the login in a tokenkeeper store
 * and refreshes once across processes.
 */

export { McpAuthProvider, mcpAuthProvider } from '../integrations/mcp/index.js';
export type { McpLoginOptions } from '../integrations/mcp/login.js';
export { type McpAuthProviderOptions, REFRESH_HANDLE } from '../integrations/mcp/provider.js';
export { registerClient } from '../integrations/mcp/registration.js';
