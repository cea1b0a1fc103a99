import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TokenkeeperError } from '../../errors.js';
import type { SessionManager } from '../manager.js';
import type { Session } from '../session.js';
import type { AuthorizeOptions } from './authorize.js';
import { loginPage, PAGE_HEADERS } from './page.js';

/**
 * Login for CLIs and desktop apps through the system browser and a loopback redirect
 * (RFC 8252 §7.3), Node only: a listener on 127.0.0.1 takes the one callback of the login, and
 * is closed whatever happens.
 */

export interface LoginWithBrowserOptions
  extends Pick<AuthorizeOptions, 'scope' | 'sessionId' | 'prompt' | 'loginHint' | 'extra' | 'par'> {
  /**
   * How the user gets to the login page: `true` (default) opens the system browser, `false`
   * opens nothing (give `onUrl` to print the URL), or a function that opens it your way.
   *
   * The system browser is opened on a one-time local address (`http://127.0.0.1:<port>/start/<random>`)
   * that redirects to the login page, so the login URL (its state and PKCE challenge) is on no
   * command line; if that address is opened twice, another program raced the browser to it and
   * the login stops with `TOKENKEEPER_LOGIN_ABORTED`. A function gets the login URL itself: do not
   * put it on a command line of your own.
   */
  open?: boolean | ((url: string) => unknown);
  /** Called with the login URL before the browser opens: print it for users whose browser does not. */
  onUrl?: (url: string) => void;
  /** How long to wait for the user (default 5 minutes); then `TOKENKEEPER_LOGIN_ABORTED`. */
  timeoutMs?: number;
  /** Stops waiting: the login rejects with `TOKENKEEPER_LOGIN_ABORTED`. */
  signal?: AbortSignal;
  /** The port to listen on (default 0: any free port; servers must accept any, RFC 8252 §7.3). */
  port?: number;
  /** The path of the redirect URI (default `/callback`). */
  callbackPath?: string;
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

/**
 * Logs in through the system browser: listens on 127.0.0.1, sends the user to the server's
 * login page with `http://127.0.0.1:<port>/callback` as the redirect URI, and completes the login
 * with the one callback that carries this login's state.
 *
 * @example
 * const session = await loginWithBrowser(manager, {
 *   scope: 'openid offline_access',
 *   onUrl: (url) => console.error(`Opening ${url} in your browser...`),
 * });
 */
export async function loginWithBrowser(
  manager: SessionManager,
  options: LoginWithBrowserOptions = {},
): Promise<Session> {
  const { open = true, onUrl, timeoutMs = DEFAULT_TIMEOUT_MS, signal, port = 0, callbackPath = '/callback' } = options;
  const fail = (why: string) => new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', `loginWithBrowser(): ${why}.`);
  if (typeof open !== 'boolean' && typeof open !== 'function') throw fail('open must be true, false or a function');
  if (open === false && typeof onUrl !== 'function') throw fail('with open: false, give onUrl to show the URL');
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) throw fail('timeoutMs must be a positive number');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw fail('port must be an integer from 0 to 65535');
  if (typeof callbackPath !== 'string' || !callbackPath.startsWith('/')) throw fail('callbackPath must start with /');
  if (signal?.aborted) throw aborted('was aborted before it started');

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = `127.0.0.1:${address.port}`;
  const redirectUri = `http://${host}${callbackPath}`;

  let finish!: (outcome: { session?: Session; error?: unknown }) => void;
  const outcome = new Promise<{ session?: Session; error?: unknown }>((resolve) => {
    finish = resolve;
  });
  let state: string | undefined;
  let taken = false;
  /**
   * The system browser is opened on this one-time local address, which redirects to the
   * authorization URL: a command line is readable by every local user, and the authorization
   * URL's state and code challenge are what another local program would need to complete this
   * login with a code of its own.
   */
  const startPath = `/start/${randomBytes(16).toString('hex')}`;
  let authorizationUrl: string | undefined;
  let started = false;
  /** The redemption of the one callback, once it arrived; settles after any clean-up of its own. */
  let redeeming: Promise<void> | undefined;
  /** Why the caller stopped waiting (an abort), if it did. */
  let gaveUp: unknown;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    // Only the browser on this machine, talking to this listener by its address (no DNS rebinding).
    if (req.headers.host !== host) return page(res, 400, 'Wrong host', 'This listener answers 127.0.0.1 only.');
    if (req.method === 'GET' && url.pathname === startPath && authorizationUrl !== undefined) {
      if (!started) {
        started = true;
        res.writeHead(302, {
          location: authorizationUrl,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        });
        return res.end();
      }
      // Opened twice: the start address was on a command line, and another program on this
      // machine may have taken the login to send its own code back. Nothing of it is trusted.
      giveUp(
        new TokenkeeperError(
          'TOKENKEEPER_LOGIN_ABORTED',
          'The browser login was stopped: its start address was opened twice, so another program on this machine may have taken the login. Start the login again.',
        ),
      );
      return page(res, 409, 'Login stopped', 'This login link was already used. Start the login again.');
    }
    if (req.method !== 'GET' || url.pathname !== callbackPath) {
      return page(res, 404, 'Not found', 'This address only receives a login callback.');
    }
    if (state === undefined || url.searchParams.get('state') !== state) {
      return page(res, 400, 'Not this login', 'This callback does not belong to the login in progress.');
    }
    if (taken) return page(res, 409, 'Already done', 'This login has already completed. You can close this window.');
    if (gaveUp !== undefined) return page(res, 409, 'Login stopped', 'This login was stopped. Start it again.');
    taken = true;
    redeeming = manager
      .callback(url)
      .then(
        async (session) => {
          if (gaveUp !== undefined) {
            // Nobody will use this session: revoke and delete it, so no refresh token is left behind.
            await session.logout({ revoke: true }).catch(() => {});
            page(res, 400, 'Sign-in stopped', 'The application stopped waiting for this login. Start it again there.');
            return;
          }
          page(res, 200, 'Signed in', 'You are signed in. You can close this window and return to the application.');
          finish({ session });
        },
        (error: unknown) => {
          const message = error instanceof TokenkeeperError ? error.message : 'The login failed.';
          page(res, 400, 'Sign-in failed', message);
          finish({ error });
        },
      )
      .catch(() => {});
  });

  const giveUp = (error: unknown) => {
    gaveUp ??= error;
    finish({ error });
  };
  // A timeout that comes while the code is being redeemed lets the redemption (bounded by the
  // request timeouts) decide: the user did finish. An abort does not wait, and what the
  // redemption stores then is revoked and deleted (above) before the login rejects.
  const timer = setTimeout(() => {
    if (redeeming === undefined) giveUp(aborted(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const onAbort = () => giveUp(aborted('was aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const login = await manager.authorize({
      redirectUri,
      ...pick(options, ['scope', 'sessionId', 'prompt', 'loginHint', 'extra', 'par']),
    });
    state = login.state;
    authorizationUrl = login.url;
    onUrl?.(login.url);
    // A function of the app's own gets the URL in this process; a command line gets the start address.
    if (typeof open === 'function') await open(login.url);
    else if (open) openBrowser(`http://${host}${startPath}`, onUrl === undefined);
    const { session, error } = await outcome;
    if (error !== undefined) throw error;
    return session as Session;
  } catch (error) {
    gaveUp ??= error; // a failure of our own (authorize, open): a callback still coming is cleaned up
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await redeeming; // never rejects; nothing it stored is left behind once the login has settled
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

function aborted(why: string): TokenkeeperError {
  return new TokenkeeperError('TOKENKEEPER_LOGIN_ABORTED', `The browser login ${why} before the user finished it.`);
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** Opens `url` in the system browser; when that fails, prints it (unless the caller shows it). */
function openBrowser(url: string, print: boolean): void {
  const [command, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['rundll32', ['url.dll,FileProtocolHandler', url]]
        : ['xdg-open', [url]];
  const shown = () => {
    if (print) process.stderr.write(`Open this address in your browser to log in:\n${url}\n`);
  };
  try {
    const child = spawn(command as string, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', shown);
    child.unref();
  } catch {
    shown();
  }
}

function page(res: ServerResponse, status: number, title: string, text: string): void {
  res.writeHead(status, { ...PAGE_HEADERS, connection: 'close' });
  res.end(loginPage(title, text));
}
