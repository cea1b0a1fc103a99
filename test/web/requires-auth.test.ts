import express from 'express';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { expressAuth, requiresAuth as expressRequiresAuth } from '../../src/exports/express.js';
import { fastifyAuth, requiresAuth as fastifyRequiresAuth } from '../../src/exports/fastify.js';
import { requiresAuth, webAuth } from '../../src/exports/web.js';
import { memoryStore, SessionManager } from '../../src/index.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// The route guards: a signed-in user's route runs; a page request without a usable session is
// sent to sign in (returnTo: the page), an API call gets 401; a session that needs a new login is
// not usable. Signed in through webAuth's own login and callback against the strict fake server.
const fixture = useFakeAuthServer();
const KEY = 'a-cookie-key-of-at-least-32-characters!';
const app = 'http://127.0.0.1'; // the fake server's registered redirect URI is http://127.0.0.1/callback
const HTML = { accept: 'text/html,application/xhtml+xml' };

async function signedIn() {
  const manager = new SessionManager(fixture.options({ authorizationEndpoint: `${fixture.as.issuer}/authorize` }));
  const auth = webAuth(manager, { redirectUri: `${app}/callback`, scope: 'offline_access', cookie: { keys: [KEY] } });
  const started = await auth.login(new Request(`${app}/auth/login`));
  const state = new URL(started.headers.get('location') as string).searchParams.get('state');
  // The login cookie and the cookie that binds the login to this browser.
  const loginCookie = started.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const done = await auth.callback(
    new Request(`${app}/callback?code=good-code&state=${state}`, { headers: { cookie: loginCookie } }),
  );
  expect(done.status).toBe(302);
  const cookie = (done.headers.getSetCookie().find((c) => c.startsWith('tk_session=')) as string).split(
    ';',
  )[0] as string;
  return { manager, auth, cookie };
}

/** Ends the user's session at the server: its refresh token used elsewhere, the next renewal refused. */
async function endAtServer(auth: ReturnType<typeof webAuth>, cookie: string) {
  const session = await auth.sessionFor(new Request(`${app}/`, { headers: { cookie } }));
  await new SessionManager(fixture.options({ store: memoryStore() })).login({
    grant: 'refresh_token',
    refreshToken: session?.tokens.refreshToken as string,
  });
  await session?.getAccessToken({ forceRefresh: true }).catch(() => {});
  expect(session?.status).toBe('reauth-required');
}

describe('requiresAuth() on Web handlers (tokenkeeper/web)', () => {
  it('runs the handler with the session, else redirects a page to sign in or answers 401', async () => {
    const { auth, cookie } = await signedIn();
    const account = requiresAuth(auth, (_request, session) => Response.json({ id: session.id }));
    const ok = await account(new Request(`${app}/account`, { headers: { cookie, ...HTML } }));
    expect(ok.status).toBe(200);
    const page = await account(new Request(`${app}/account?tab=2`, { headers: HTML }));
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('/auth/login?returnTo=%2Faccount%3Ftab%3D2');
    const api = await account(new Request(`${app}/account`, { method: 'POST' }));
    expect(api.status).toBe(401);
    expect(await api.json()).toEqual({ error: 'unauthenticated', login: '/auth/login' });
    // A session the server ended is not a signed-in user.
    await endAtServer(auth, cookie);
    expect((await account(new Request(`${app}/account`, { headers: { cookie } }))).status).toBe(401);
  });
});

describe('requiresAuth() in Express and Fastify', () => {
  it('Express: the route runs for the signed-in user; others are sent to sign in or get 401', async () => {
    const { auth, cookie } = await signedIn();
    const server = express()
      .use(expressAuth(auth))
      .get('/account', expressRequiresAuth(), (req, res) => {
        res.json({ id: req.tokenkeeper?.id });
      })
      .listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const ok = await fetch(`${base}/account`, { headers: { cookie } });
      expect(ok.status).toBe(200);
      const page = await fetch(`${base}/account`, { headers: HTML, redirect: 'manual' });
      expect(page.status).toBe(302);
      expect(page.headers.get('location')).toBe('/auth/login?returnTo=%2Faccount');
      expect((await fetch(`${base}/account`)).status).toBe(401);
      await endAtServer(auth, cookie);
      expect((await fetch(`${base}/account`, { headers: { cookie } })).status).toBe(401);
    } finally {
      server.close();
    }
  });

  it('Fastify: a preHandler with the same answers', async () => {
    const { auth, cookie } = await signedIn();
    const fastify = Fastify();
    await fastify.register(fastifyAuth(auth, { basePath: '/login-routes' }));
    fastify.get('/account', { preHandler: fastifyRequiresAuth({ basePath: '/login-routes' }) }, async (request) => ({
      id: (request as unknown as { tokenkeeper?: { id: string } }).tokenkeeper?.id,
    }));
    try {
      expect((await fastify.inject({ url: '/account', headers: { cookie } })).statusCode).toBe(200);
      const page = await fastify.inject({ url: '/account?x=1', headers: HTML });
      expect(page.statusCode).toBe(302);
      expect(page.headers.location).toBe('/login-routes/login?returnTo=%2Faccount%3Fx%3D1');
      expect((await fastify.inject({ url: '/account', headers: { accept: 'application/json' } })).statusCode).toBe(401);
    } finally {
      await fastify.close();
    }
  });
});
