import type { SessionManager } from '../../session/manager.js';
import type { Session } from '../../session/session.js';
import type { McpLoginOptions } from './login.js';
import { type McpAuthProviderOptions, McpProvider } from './provider.js';

/** The provider `mcpAuthProvider` returns: an `OAuthClientProvider` with a login of its own. */
export class McpAuthProvider extends McpProvider {
  /**
   * Logs in to the MCP server before connecting (a loopback browser login, or the device flow
   * with `device`), unless a usable session is stored. See {@link McpLoginOptions}.
   */
  async login(options: McpLoginOptions = {}): Promise<Session> {
    const { loginToMcpServer } = await import('./login.js');
    return loginToMcpServer(this, options);
  }
}

/**
 * An `OAuthClientProvider` for the MCP TypeScript SDK whose tokens, client registration, PKCE
 * verifier and discovery results live in the manager's store (encrypted when the manager
 * encrypts), and whose renewals go out once across every process that shares the store, the
 * SDK's own refresh after a 401 included. Tested with `@modelcontextprotocol/sdk` 1.32.2.
 *
 * @example
 * const manager = new SessionManager({ store: fileStore({ app: 'my-cli' }) });
 * const authProvider = mcpAuthProvider(manager, {
 *   serverUrl: 'https://mcp.example.com/mcp',
 *   clientMetadata: { client_name: 'my-cli', redirect_uris: ['http://127.0.0.1/callback'] },
 * });
 * await authProvider.login(); // once: later runs find the session in the store
 * const transport = new StreamableHTTPClientTransport(new URL('https://mcp.example.com/mcp'), { authProvider });
 */
export function mcpAuthProvider(manager: SessionManager, options: McpAuthProviderOptions): McpAuthProvider {
  return new McpAuthProvider(manager, options);
}
