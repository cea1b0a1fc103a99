import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Session } from '../session/session.js';
import { nodeResponse, routesOf, webRequest } from './node-request.js';
import { type RequiresAuthOptions, sendNode, signInFirst, usableSession } from './requires-auth.js';
import type { WebAuth } from './web.js';

/** An Express request, as the middleware uses it (Express 5). */
export interface ExpressRequest extends IncomingMessage {
  originalUrl: string;
  path: string;
  /** The signed-in user's session, or `undefined`: set on every request by {@link expressAuth}. */
  tokenkeeper?: Session;
}

export interface ExpressAuthOptions {
  /** Where the routes are mounted (default `/auth`): `GET <basePath>/login`, `GET .../callback`, `POST .../logout`. */
  basePath?: string;
}

/**
 * Express middleware over {@link WebAuth}: mounts the login, callback and logout routes, and
 * sets `req.tokenkeeper` to the signed-in user's `Session` (or `undefined`) on every request.
 * Works with or without express-session: the sign-in has a cookie of its own.
 *
 * @example
 * app.use(expressAuth(webAuth(manager, { redirectUri, cookie: { keys } })));
 * app.get('/me', async (req, res) => res.json(await (await req.tokenkeeper!.fetch(api)).json()));
 */
export function expressAuth(
  auth: WebAuth,
  options: ExpressAuthOptions = {},
): (req: ExpressRequest, res: ServerResponse, next: (error?: unknown) => void) => Promise<void> {
  const routes = routesOf(options.basePath);
  return async (req, res, next) => {
    try {
      const request = webRequest(auth, req.method ?? 'GET', req.originalUrl, req.headers);
      const path = req.path;
      const response =
        path === routes.login && req.method === 'GET'
          ? await auth.login(request)
          : path === routes.callback && req.method === 'GET'
            ? await auth.callback(request)
            : path === routes.logout
              ? await auth.logout(request)
              : undefined;
      if (response === undefined) {
        req.tokenkeeper = await auth.sessionFor(request);
        return next();
      }
      const { status, headers, body } = await nodeResponse(response);
      res.statusCode = status;
      for (const [name, value] of headers) res.setHeader(name, value);
      res.end(body);
    } catch (error) {
      next(error);
    }
  };
}

/**
 * Express middleware that lets a route run only for a signed-in user whose session can still be
 * used (`req.tokenkeeper`, set by {@link expressAuth} mounted before it): a page request is
 * redirected to `<basePath>/login?returnTo=<the page>`, anything else answered 401.
 *
 * @example
 * app.get('/account', requiresAuth(), (req, res) => res.json(req.tokenkeeper?.claims));
 */
export function requiresAuth(
  options: RequiresAuthOptions = {},
): (req: ExpressRequest, res: ServerResponse, next: (error?: unknown) => void) => Promise<void> {
  const { login } = routesOf(options.basePath);
  return async (req, res, next) => {
    if (usableSession(req.tokenkeeper)) return next();
    try {
      await sendNode(res, signInFirst(req.method ?? 'GET', req.headers.accept, req.originalUrl, login));
    } catch (error) {
      next(error);
    }
  };
}
