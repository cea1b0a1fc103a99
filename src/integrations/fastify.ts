import type { IncomingHttpHeaders } from 'node:http';
import type { Session } from '../session/session.js';
import { nodeResponse, routesOf, webRequest } from './node-request.js';
import { type RequiresAuthOptions, signInFirst, usableSession } from './requires-auth.js';
import type { WebAuth } from './web.js';

/** The parts of Fastify 5 the plugin uses (no type dependency on fastify). */
interface FastifyLike {
  decorateRequest(name: string, value: unknown): unknown;
  addHook(name: 'onRequest', hook: (request: FastifyRequestLike) => Promise<void>): unknown;
  route(options: {
    method: string | string[];
    url: string;
    handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>;
  }): unknown;
  hasContentTypeParser(type: string): boolean;
  addContentTypeParser(
    type: string,
    options: { parseAs: 'string' },
    parser: (request: unknown, body: string, done: (error: Error | null, body?: unknown) => void) => void,
  ): unknown;
}
interface FastifyRequestLike {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  routeOptions?: { url?: string };
  tokenkeeper?: Session;
}
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string | string[]): FastifyReplyLike;
  send(body: unknown): unknown;
}

export interface FastifyAuthOptions {
  /** Where the routes are mounted (default `/auth`). */
  basePath?: string;
}

/**
 * A Fastify plugin over {@link WebAuth}: `GET <basePath>/login`, `GET .../callback`,
 * `POST .../logout`, and `request.tokenkeeper` (the signed-in user's `Session`, or `undefined`)
 * on every request of the app.
 *
 * @example
 * await app.register(fastifyAuth(webAuth(manager, { redirectUri, cookie: { keys } })));
 */
export function fastifyAuth(auth: WebAuth, options: FastifyAuthOptions = {}) {
  const routes = routesOf(options.basePath);
  const ours = new Set(Object.values(routes));
  const toRequest = (r: FastifyRequestLike) => webRequest(auth, r.method, r.url, r.headers);
  const send = async (reply: FastifyReplyLike, response: Response) => {
    const { status, headers, body } = await nodeResponse(response);
    reply.code(status);
    for (const [name, value] of headers) reply.header(name, value);
    return reply.send(body);
  };
  const plugin = async (fastify: FastifyLike) => {
    fastify.decorateRequest('tokenkeeper', undefined);
    fastify.addHook('onRequest', async (request) => {
      if (!ours.has(new URL(request.url, auth.origin).pathname))
        request.tokenkeeper = await auth.sessionFor(toRequest(request));
    });
    // A sign-out form posts an empty urlencoded body: accept it without @fastify/formbody.
    if (!fastify.hasContentTypeParser('application/x-www-form-urlencoded')) {
      fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, _body, done) =>
        done(null, {}),
      );
    }
    fastify.route({
      method: 'GET',
      url: routes.login,
      handler: async (req, reply) => send(reply, await auth.login(toRequest(req))),
    });
    fastify.route({
      method: 'GET',
      url: routes.callback,
      handler: async (req, reply) => send(reply, await auth.callback(toRequest(req))),
    });
    fastify.route({
      method: ['GET', 'POST'],
      url: routes.logout,
      handler: async (req, reply) => send(reply, await auth.logout(toRequest(req))),
    });
  };
  // Like fastify-plugin: the hook and decoration apply to the whole app, not only this plugin.
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}

/**
 * A Fastify `preHandler` that lets a route run only for a signed-in user whose session can still
 * be used (`request.tokenkeeper`, set by {@link fastifyAuth}): a page request is redirected to
 * `<basePath>/login?returnTo=<the page>`, anything else answered 401.
 *
 * @example
 * app.get('/account', { preHandler: requiresAuth() }, async (request) => request.tokenkeeper?.claims);
 */
export function requiresAuth(
  options: RequiresAuthOptions = {},
): (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown> {
  const { login } = routesOf(options.basePath);
  return async (request, reply) => {
    if (usableSession(request.tokenkeeper)) return undefined;
    const header = request.headers.accept;
    const response = signInFirst(request.method, Array.isArray(header) ? header.join(',') : header, request.url, login);
    const { status, headers, body } = await nodeResponse(response);
    reply.code(status);
    for (const [name, value] of headers) reply.header(name, value);
    return reply.send(body);
  };
}
