import { fromBase64, toBase64Url } from '../codec/base64.js';
import { TokenkeeperError } from '../errors.js';
import { loginPage, PAGE_HEADERS } from '../session/login/page.js';
import type { SessionManager } from '../session/manager.js';
import type { Session } from '../session/session.js';

/**
 * Sign users in to a web app and call APIs on their behalf, on Web-standard `Request` and
 * `Response` (Hono, Next.js route handlers, SvelteKit, Remix, Bun, Deno; Express and Fastify
 * through `tokenkeeper/express` and `tokenkeeper/fastify`).
 *
 * The browser gets only an opaque random id in a signed, HttpOnly cookie; the tokens stay in
 * the manager's store, shared by every worker and machine, and refreshed once per user.
 */

export interface WebAuthOptions {
  /** The app's callback URL, as registered at the server; its origin is the app's origin. */
  redirectUri: string;
  /** The scope to ask for (default `openid offline_access`). */
  scope?: string;
  /** Authorization request parameters: `prompt`, `extra` (see `authorize()`). */
  prompt?: string;
  extra?: Record<string, string>;
  cookie: {
    /**
     * HMAC keys that sign the cookie, newest first: the first signs, all verify. Rotate by
     * adding a new key in front, and drop the oldest once its cookies have expired.
     * At least 32 characters each.
     */
    keys: string[];
    /**
     * The cookie's name. Default `__Host-tk_session` when the cookie is `Secure` (a `__Host-`
     * cookie can be set only by this host over https: no sibling subdomain or network attacker
     * can plant one), else `tk_session`. The login in progress uses `<name>_login`, and the
     * browser's binding `<name>_bind` (`__Host-` whenever `Secure`, whatever the name).
     */
    name?: string;
    /** Default: `Secure` unless the app runs on http on loopback (development). */
    secure?: boolean;
    /** How long the browser keeps the cookie, in seconds (default 14 days). */
    maxAgeSeconds?: number;
  };
  /** Where `returnTo` points when a login gives none (default `/`). */
  defaultReturnTo?: string;
  /** Where the browser goes after a logout (default `/`). */
  afterLogout?: string;
  /**
   * Told what went wrong when a sign-in route fails. The visitor sees only a generic page with
   * `reference` (a store's host or an error's text is none of their business); log the error with
   * it, so support can find the details from what the user reports. Default: `console.error`.
   */
  onError?: (
    error: unknown,
    context: { reference: string; route: 'login' | 'callback' | 'logout' | 'session' },
  ) => void;
}

export interface WebAuth {
  /** Redirects to the authorization server; `?returnTo=/path` (same-origin paths only) comes back after. */
  login(request: Request): Promise<Response>;
  /** Completes the login, sets the session cookie, and redirects to the page the user started from. */
  callback(request: Request): Promise<Response>;
  /** A POST from the app's own pages: revokes, deletes the session, clears the cookie. */
  logout(request: Request): Promise<Response>;
  /**
   * The signed-in user's session, or `undefined`. When the store fails it throws a
   * `TokenkeeperError` of the same code whose message is only a reference (the error itself,
   * which names the store's host, goes to `onError` with `route: 'session'`): a framework's
   * default error page shows visitors nothing of the server.
   */
  sessionFor(request: Request): Promise<Session | undefined>;
  /** The app's origin (from `redirectUri`). */
  readonly origin: string;
}

const DEFAULT_MAX_AGE_S = 14 * 24 * 3600;
const LOGIN_MAX_AGE_S = 600;
const SESSION_ID = /^[\w-]{43}$/;
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;
/** Failures of the server's answer to this one login (not of the app): the visitor may just start again. */
const ANSWER_PROBLEMS = new Set([
  'TOKENKEEPER_INVALID_GRANT',
  'TOKENKEEPER_AUTHORIZATION_RESPONSE',
  'TOKENKEEPER_ID_TOKEN',
  'TOKENKEEPER_INVALID_REQUEST',
  'TOKENKEEPER_INVALID_SCOPE',
]);

/**
 * The neutral web handlers of `manager`'s sign-in: see {@link WebAuth}.
 *
 * @example
 * const auth = webAuth(manager, {
 *   redirectUri: 'https://app.example.com/auth/callback',
 *   cookie: { keys: [process.env.COOKIE_KEY] },
 * });
 * app.get('/auth/login', (c) => auth.login(c.req.raw)); // Hono
 */
export function webAuth(manager: SessionManager, options: WebAuthOptions): WebAuth {
  const o = checkOptions(options);
  const { name, secure, maxAge, origin } = o;
  const loginName = `${name}_login`;
  // The browser's own random value, in a cookie an attacker cannot plant (`__Host-` on https),
  // copied into each login cookie: a login cookie works only in the browser it was issued to, so
  // a login cookie of the attacker's own, planted in a victim's browser with the attacker's
  // callback, does not sign the victim in as the attacker.
  const bindName = secure ? `__Host-${name.replace(/^__Host-/, '')}_bind` : `${name}_bind`;
  const signer = new Signer(o.keys);

  const cookie = (n: string, value: string, age: number) =>
    `${n}=${value}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}; Max-Age=${age}`;
  const cleared = (n: string) => cookie(n, '', 0);
  const signed = async (n: string, value: string, age: number) =>
    cookie(n, `${value}.${await signer.sign(n, value)}`, age);
  /** The verified value of cookie `n` in `request`, or `undefined`. */
  const read = async (request: Request, n: string): Promise<string | undefined> => {
    const raw = cookieValue(request.headers.get('cookie'), n);
    const dot = raw?.lastIndexOf('.') ?? -1;
    if (raw === undefined || dot <= 0) return undefined;
    const value = raw.slice(0, dot);
    return (await signer.verify(n, value, raw.slice(dot + 1))) ? value : undefined;
  };
  const sessionFor = async (request: Request): Promise<Session | undefined> => {
    const id = await read(request, name);
    if (id === undefined || !SESSION_ID.test(id)) return undefined;
    try {
      return await manager.get(id);
    } catch (error) {
      const reference = newReference();
      report(error, reference, 'session');
      const code = error instanceof TokenkeeperError ? error.code : 'TOKENKEEPER_STORE_UNAVAILABLE';
      throw new TokenkeeperError(
        code,
        `The signed-in session could not be read (reference ${reference}; the server log has the details).`,
        { cause: error },
      );
    }
  };
  const newReference = () => toBase64Url(crypto.getRandomValues(new Uint8Array(6)));
  const report = (error: unknown, reference: string, route: 'login' | 'callback' | 'logout' | 'session') => {
    try {
      o.onError(error, { reference, route });
    } catch {}
  };

  /**
   * A failure page for the visitor: what they can do about it, and a reference that finds the
   * details in the server's log. Never the error's own message: a store error names hosts and
   * ports, and an unexpected one may say anything.
   */
  const failure = (route: 'login' | 'callback' | 'logout', error: unknown): Response => {
    const reference = newReference();
    report(error, reference, route);
    const code = (error as { code?: unknown } | undefined)?.code;
    const again = 'if it keeps failing, give this reference to the site’s support';
    const [status, title, text] =
      code === 'TOKENKEEPER_ACCESS_DENIED'
        ? [403, 'Sign-in declined', 'The sign-in was declined or cancelled. Start again to sign in.']
        : code === 'TOKENKEEPER_LOGIN_STATE'
          ? [400, 'Sign-in not recognized', 'This sign-in was already used or took too long. Start again.']
          : typeof code === 'string' && ANSWER_PROBLEMS.has(code)
            ? [400, 'Sign-in failed', `This sign-in could not be completed. Start again; ${again}.`]
            : [
                500,
                route === 'logout' ? 'Sign-out failed' : 'Sign-in failed',
                `Something went wrong on our side. Try again in a moment; ${again}.`,
              ];
    // A failed callback ends its login: the browser starts the next one afresh.
    return page(status, title, `${text} Reference: ${reference}.`, route === 'callback' ? [cleared(loginName)] : []);
  };
  const guarded =
    (route: 'login' | 'callback' | 'logout', handler: (request: Request) => Promise<Response>) =>
    (request: Request): Promise<Response> =>
      handler(request).catch((error: unknown) => failure(route, error));

  return {
    origin,
    sessionFor,
    login: guarded('login', login),
    callback: guarded('callback', callback),
    logout: guarded('logout', logout),
  };

  async function login(request: Request): Promise<Response> {
    const returnTo = new URL(request.url, origin).searchParams.get('returnTo') ?? o.defaultReturnTo;
    if (!samePath(returnTo, origin)) {
      return page(400, 'Not a page of this site', 'returnTo must be a path on this site, such as /account.');
    }
    const { url, state } = await manager.authorize({
      redirectUri: o.redirectUri,
      scope: o.scope,
      sessionId: randomId(), // a new id at every login: no session fixation
      ...(o.prompt === undefined ? {} : { prompt: o.prompt }),
      ...(o.extra === undefined ? {} : { extra: o.extra }),
    });
    const existing = await read(request, bindName);
    const bind = existing !== undefined && SESSION_ID.test(existing) ? existing : randomId();
    const login = toBase64Url(new TextEncoder().encode(JSON.stringify({ s: state, r: returnTo, b: bind })));
    return redirect(url, 302, [await signed(loginName, login, LOGIN_MAX_AGE_S), await signed(bindName, bind, maxAge)]);
  }

  async function callback(request: Request): Promise<Response> {
    const state = new URL(request.url, origin).searchParams.get('state');
    const login = parseLogin(await read(request, loginName));
    // Checked again before the code is redeemed: a login cookie of an older version may carry a
    // returnTo that cannot be a Location, and nothing must be stored for a login that cannot end.
    if (login !== undefined && !samePath(login.r, origin)) login.r = o.defaultReturnTo;
    // The login must have started in this browser: no one else's login completed in it (login CSRF).
    const bind = await read(request, bindName);
    if (login === undefined || state === null || login.s !== state || bind === undefined || !sameText(bind, login.b)) {
      return page(
        400,
        'Sign-in not recognized',
        'This sign-in did not start in this browser, or took too long. Start again.',
        [cleared(loginName)],
      );
    }
    const session = await manager.callback(request);
    try {
      const response = redirect(login.r, 302, [await signed(name, session.id, maxAge), cleared(loginName)]);
      // A session this browser had before is over: its tokens are not left behind in the store.
      const previous = await sessionFor(request).catch(() => undefined);
      if (previous !== undefined && previous.id !== session.id) await previous.logout().catch(() => {});
      return response;
    } catch (error) {
      // The browser will never hold this session's cookie: revoke and delete it rather than
      // leave its refresh token in the store, unowned.
      await session.logout({ revoke: true }).catch(() => {});
      throw error;
    }
  }

  async function logout(request: Request): Promise<Response> {
    if (request.method !== 'POST') {
      return page(405, 'Use the sign-out button', 'Signing out takes a POST from this site.', [], { allow: 'POST' });
    }
    // Only the app's own pages may sign a user out (no cross-site logout).
    const from = request.headers.get('origin');
    const site = request.headers.get('sec-fetch-site');
    if (from === null ? site !== 'same-origin' : from !== origin) {
      return page(403, 'Not from this site', 'Signing out must come from a page of this site.');
    }
    const session = await sessionFor(request).catch(() => undefined);
    if (session !== undefined) await session.logout({ revoke: true }).catch(() => {});
    return redirect(o.afterLogout, 303, [cleared(name)]);
  }
}

interface Checked {
  redirectUri: string;
  scope: string;
  prompt?: string;
  extra?: Record<string, string>;
  keys: string[];
  name: string;
  secure: boolean;
  maxAge: number;
  origin: string;
  defaultReturnTo: string;
  afterLogout: string;
  onError: NonNullable<WebAuthOptions['onError']>;
}

function checkOptions(options: WebAuthOptions): Checked {
  const fail = (why: string) => new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', `webAuth(): ${why}.`);
  if (typeof options !== 'object' || options === null) throw fail('give { redirectUri, cookie: { keys } }');
  let redirect: URL;
  try {
    redirect = new URL(options.redirectUri);
  } catch {
    throw fail('redirectUri must be the absolute URL of the callback route');
  }
  const loopback = LOOPBACK.test(redirect.hostname);
  if (redirect.protocol !== 'https:' && !(redirect.protocol === 'http:' && loopback)) {
    throw fail('redirectUri must be https (plain http only on loopback, for development)');
  }
  const c = options.cookie;
  if (typeof c !== 'object' || c === null || !Array.isArray(c.keys) || c.keys.length === 0) {
    throw fail('cookie.keys must be a list of secrets, newest first');
  }
  for (const key of c.keys) {
    if (typeof key !== 'string' || key.length < 32)
      throw fail('each cookie key must be a string of at least 32 characters');
  }
  const secure = c.secure ?? !(redirect.protocol === 'http:' && loopback);
  const name = c.name ?? (secure ? '__Host-tk_session' : 'tk_session');
  if (typeof name !== 'string' || !/^[\w-]{1,64}$/.test(name))
    throw fail('cookie.name must be letters, digits, _ or -');
  if (name.startsWith('__Host-') && !secure) throw fail('a __Host- cookie name needs a Secure cookie (https)');
  const maxAge = c.maxAgeSeconds ?? DEFAULT_MAX_AGE_S;
  if (!Number.isInteger(maxAge) || maxAge <= 0) throw fail('cookie.maxAgeSeconds must be a positive integer');
  const origin = redirect.origin;
  const defaultReturnTo = options.defaultReturnTo ?? '/';
  const afterLogout = options.afterLogout ?? '/';
  for (const [what, path] of [
    ['defaultReturnTo', defaultReturnTo],
    ['afterLogout', afterLogout],
  ] as const) {
    if (!samePath(path, origin)) throw fail(`${what} must be a path on this site, such as /`);
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') throw fail('onError must be a function');
  return {
    redirectUri: redirect.href,
    scope: options.scope ?? 'openid offline_access',
    ...(options.prompt === undefined ? {} : { prompt: options.prompt }),
    ...(options.extra === undefined ? {} : { extra: options.extra }),
    keys: c.keys,
    name,
    secure,
    maxAge,
    origin,
    defaultReturnTo,
    afterLogout,
    onError:
      options.onError ??
      ((error, { reference, route }) =>
        console.error(`tokenkeeper: sign-in ${route} failed (reference ${reference}):`, error)),
  };
}

/**
 * A path of this site only: `/x`, never `//evil.example`, `/\evil.example` or another origin; and
 * only what a `Location` header carries as it is: visible ASCII. Anything else (`/€`, `/。evil`, a
 * space, a control character, DEL) fails as a header value, or is rewritten differently by each
 * client, so it is refused at login, before anything is stored; a path with such characters is
 * given percent-encoded.
 */
function samePath(path: unknown, origin: string): path is string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//') || path.startsWith('/\\'))
    return false;
  if (!/^[\x21-\x7e]+$/.test(path) || path.includes('\\')) return false;
  try {
    return new URL(path, origin).origin === origin;
  } catch {
    return false;
  }
}

function parseLogin(value: string | undefined): { s: string; r: string; b: string } | undefined {
  if (value === undefined) return undefined;
  try {
    const v = JSON.parse(new TextDecoder().decode(fromBase64(value) ?? new Uint8Array())) as {
      s?: unknown;
      r?: unknown;
      b?: unknown;
    };
    return typeof v.s === 'string' && typeof v.r === 'string' && typeof v.b === 'string'
      ? { s: v.s, r: v.r, b: v.b }
      : undefined;
  } catch {
    return undefined;
  }
}

/** HMAC-SHA256 signatures of cookie values, bound to the cookie's name; any key of the list verifies. */
class Signer {
  readonly #keys: Promise<CryptoKey>[];
  constructor(secrets: string[]) {
    this.#keys = secrets.map((s) =>
      crypto.subtle.importKey('raw', new TextEncoder().encode(s), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']),
    );
  }
  async sign(name: string, value: string, key = this.#keys[0] as Promise<CryptoKey>): Promise<string> {
    const mac = await crypto.subtle.sign('HMAC', await key, new TextEncoder().encode(`${name}=${value}`));
    return toBase64Url(new Uint8Array(mac));
  }
  async verify(name: string, value: string, signature: string): Promise<boolean> {
    for (const key of this.#keys) if (sameText(await this.sign(name, value, key), signature)) return true;
    return false;
  }
}

/** Compares in time independent of where the texts differ. */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function cookieValue(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function randomId(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

function redirect(location: string, status: 302 | 303, cookies: string[]): Response {
  const headers = new Headers({ location, 'cache-control': 'no-store' });
  for (const c of cookies) headers.append('set-cookie', c);
  return new Response(null, { status, headers });
}

function page(
  status: number,
  title: string,
  text: string,
  cookies: string[] = [],
  extra: Record<string, string> = {},
): Response {
  const headers = new Headers({ ...PAGE_HEADERS, ...extra });
  for (const c of cookies) headers.append('set-cookie', c);
  return new Response(loginPage(title, text), { status, headers });
}
