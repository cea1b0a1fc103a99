import type { Session } from '../session/session.js';
import { nodeResponse, routesOf } from './node-request.js';
import type { WebAuth } from './web.js';

/**
 * Route guards over the web sign-in: a route runs only for a signed-in user whose session can
 * still be used. Anyone else is sent to sign in (a page request: `GET` or `HEAD` asking for
 * HTML, redirected to the login route with `returnTo` set to the page) or answered 401 (an API
 * call, a form post), so a fetch from a script never follows a redirect to the server.
 */

export interface RequiresAuthOptions {
  /** Where the sign-in routes are mounted (default `/auth`): the login route is `<basePath>/login`. */
  basePath?: string;
}

/** A session that can still be used: not missing, not waiting for a new login. */
export function usableSession(session: Session | undefined): session is Session {
  return session !== undefined && session.status === 'active';
}

/** The answer to a request without a usable session. `path` is the page's path and query. */
export function signInFirst(method: string, accept: string | null | undefined, path: string, login: string): Response {
  const page = (method === 'GET' || method === 'HEAD') && /\btext\/html\b/.test(accept ?? '');
  if (page) {
    const to = `${login}?returnTo=${encodeURIComponent(path.startsWith('/') && !path.startsWith('//') ? path : '/')}`;
    return new Response(null, { status: 302, headers: { location: to, 'cache-control': 'no-store' } });
  }
  return new Response(JSON.stringify({ error: 'unauthenticated', login }), {
    status: 401,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

/**
 * Guards a Web-standard handler: `handler` runs with the signed-in user's session; anyone else
 * is sent to sign in (see {@link signInFirst}).
 *
 * @example
 * app.get('/account', (c) => account(c.req.raw)); // Hono
 * const account = requiresAuth(auth, async (request, session) => Response.json(session.claims));
 */
export function requiresAuth(
  auth: WebAuth,
  handler: (request: Request, session: Session) => Response | Promise<Response>,
  options: RequiresAuthOptions = {},
): (request: Request) => Promise<Response> {
  const { login } = routesOf(options.basePath);
  return async (request) => {
    const session = await auth.sessionFor(request);
    if (usableSession(session)) return handler(request, session);
    const url = new URL(request.url);
    return signInFirst(request.method, request.headers.get('accept'), url.pathname + url.search, login);
  };
}

/** Writes a Web `Response` to a Node response (Express, Fastify's raw reply). */
export async function sendNode(
  res: { statusCode: number; setHeader(name: string, value: string | string[]): unknown; end(body: Buffer): unknown },
  response: Response,
): Promise<void> {
  const { status, headers, body } = await nodeResponse(response);
  res.statusCode = status;
  for (const [name, value] of headers) res.setHeader(name, value);
  res.end(body);
}
