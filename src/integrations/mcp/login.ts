import type { DeviceCodeGrant } from '../../session/login/device.js';
import { type LoginWithBrowserOptions, loginWithBrowser } from '../../session/login/loopback.js';
import type { Session } from '../../session/session.js';
import type { McpProvider } from './provider.js';

export interface McpLoginOptions
  extends Pick<LoginWithBrowserOptions, 'open' | 'onUrl' | 'timeoutMs' | 'signal' | 'port' | 'callbackPath'> {
  /**
   * Log in with the device flow (RFC 8628) instead of a browser on this machine, for headless
   * machines: `onPrompt` shows the user the code and the page to enter it. The authorization
   * server must offer it, and the client must be registered with its grant type.
   */
  device?: Pick<DeviceCodeGrant, 'onPrompt'>;
  /** Log in again even though a usable session is stored (default: the stored one is kept). */
  force?: boolean;
}

/**
 * Logs in to the MCP server once, before connecting: discovers its authorization server (RFC
 * 9728), registers the client if needed (once, kept), and runs tokenkeeper's own login (a
 * loopback browser login, RFC 8252, or the device flow), asking for the server's `resource`
 * (RFC 8707). The session lands in the manager's store, where every process finds it.
 */
export async function loginToMcpServer(provider: McpProvider, options: McpLoginOptions = {}): Promise<Session> {
  const { manager, scope, resource } = await provider._prepare();
  if (options.force !== true) {
    const stored = await manager.get(provider.sessionId).catch(() => undefined);
    if (
      stored !== undefined &&
      stored.status === 'active' &&
      (stored.info().refreshable || !stored.tokens.isExpired())
    ) {
      provider._loggedIn(stored);
      return stored;
    }
  }
  const session =
    options.device !== undefined
      ? await manager.login(
          {
            grant: 'device_code',
            onPrompt: options.device.onPrompt,
            ...(scope === undefined ? {} : { scope }),
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          },
          { sessionId: provider.sessionId, replace: true },
        )
      : await loginWithBrowser(manager, {
          sessionId: provider.sessionId,
          ...(scope === undefined ? {} : { scope }),
          ...(resource === undefined ? {} : { extra: { resource } }),
          ...pick(options, ['open', 'onUrl', 'timeoutMs', 'signal', 'port', 'callbackPath']),
        });
  provider._loggedIn(session);
  return session;
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
