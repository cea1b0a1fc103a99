import type { IncomingHttpHeaders } from 'node:http';
import type { WebAuth } from './web.js';

/**
 * Between Node's request/response objects (Express, Fastify) and the Web-standard ones the
 * neutral handlers take. The request's URL is built on the app's own origin (from the
 * `redirectUri`), never on the `Host` header a client chose.
 */
export function webRequest(auth: WebAuth, method: string, url: string, headers: IncomingHttpHeaders): Request {
  const h = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    h.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return new Request(new URL(url, auth.origin), { method, headers: h });
}

/** Status, headers (every `Set-Cookie` on its own) and body of `response`, for a Node response. */
export async function nodeResponse(
  response: Response,
): Promise<{ status: number; headers: [string, string | string[]][]; body: Buffer }> {
  const headers: [string, string | string[]][] = [];
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers.push([name, value]);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers.push(['set-cookie', cookies]);
  return { status: response.status, headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** The routes under `basePath` the adapters mount. */
export function routesOf(basePath = '/auth') {
  if (typeof basePath !== 'string' || !/^(\/[\w.~-]+)*$/.test(basePath)) {
    throw new TypeError('basePath must be a path such as /auth (no trailing slash), or "" for the root');
  }
  return { login: `${basePath}/login`, callback: `${basePath}/callback`, logout: `${basePath}/logout` };
}
