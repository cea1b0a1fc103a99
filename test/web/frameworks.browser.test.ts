import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import express from 'express';
import expressSession from 'express-session';
import Fastify from 'fastify';
import { Hono } from 'hono';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ExpressRequest, expressAuth } from '../../src/exports/express.js';
import { fastifyAuth } from '../../src/exports/fastify.js';
import { type WebAuth, webAuth } from '../../src/exports/web.js';
import { memoryStore, type Session, SessionManager, type Store } from '../../src/index.js';
import { launchChromium } from '../helpers/browser.js';
import { unusedPort } from '../helpers/fake-as.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';
import { offline, signIn } from '../helpers/sign-in.js';

// The web sign-in end to end, on one worker: Hono (the neutral handlers on Web Request/Response)
// and the Fastify plugin, with Chromium on oidc-provider's real login and consent pages.

const KEY_A = 'cookie-key-A-with-at-least-32-characters';
const KEY_B = 'cookie-key-B-with-at-least-32-characters';
let op: RealAuthServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let store: Store;

beforeAll(async () => {
  op = await startRealAuthServer();
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await op?.close();
});
beforeEach(async () => {
  store = memoryStore();
  context = await browser.newContext();
  await offline(context);
  page = await context.newPage();
});
afterEach(async () => {
  await context?.close();
  await store.close();
});

const manager = () =>
  new SessionManager({ store, issuer: op.issuer, client: { clientId: op.clientId, clientSecret: op.clientSecret } });
const authFor = (m: SessionManager, origin: string, keys = [KEY_A]) =>
  webAuth(m, {
    redirectUri: `${origin}/auth/callback`,
    scope: 'openid offline_access api:read',
    prompt: 'consent',
    cookie: { keys },
  });

const home = (session: Session | undefined) =>
  session === undefined
    ? '<h1>Signed out</h1><a id="login" href="/auth/login?returnTo=/account">Sign in</a>'
    : `<h1>Signed in as ${String(session.claims?.sub)}</h1><form method="post" action="/auth/logout"><button id="logout">Sign out</button></form>`;

async function api(session: Session | undefined): Promise<{ status: number; body: unknown }> {
  if (session === undefined) return { status: 401, body: { error: 'sign in first' } };
  const response = await session.fetch(`${op.issuer}/me`);
  return { status: 200, body: { status: response.status, user: await response.json() } };
}

/** Signs in from the app's home page, calls the API, signs out: what every adapter must do. */
async function signInCallSignOut(origin: string): Promise<string> {
  await page.goto(`${origin}/`);
  expect(await page.textContent('h1')).toBe('Signed out');
  await Promise.all([page.waitForNavigation(), page.click('#login')]);
  await signIn(page, undefined, () => page.url() === `${origin}/account`);
  expect(await page.textContent('h1')).toBe('Signed in as alice');
  const cookies = await context.cookies(origin);
  const cookie = cookies.find((c) => c.name === 'tk_session');
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false, path: '/' });
  expect(cookie?.value).toMatch(/^[\w-]{43}\.[\w-]{43}$/); // an opaque id and its signature: no token
  expect(cookies.find((c) => c.name === 'tk_session_login')).toBeUndefined(); // the login is over
  const header = `tk_session=${cookie?.value}`;
  const me = await fetch(`${origin}/api/me`, { headers: { cookie: header } });
  expect(me.status).toBe(200);
  expect(await me.json()).toMatchObject({ status: 200, user: { sub: 'alice' } });

  const revocations = op.counts.revocations;
  await page.goto(`${origin}/account`);
  await Promise.all([page.waitForNavigation(), page.click('#logout')]);
  expect(await page.textContent('h1')).toBe('Signed out');
  expect(op.counts.revocations).toBe(revocations + 2); // the refresh token, then the access token
  expect((await fetch(`${origin}/api/me`, { headers: { cookie: header } })).status).toBe(401);
  return header;
}

describe('Hono (the neutral handlers as they are)', () => {
  it('signs in, calls the API with the user token, signs out with revocation; cookie keys rotate', async () => {
    const port = await unusedPort();
    const origin = `http://127.0.0.1:${port}`;
    const m = manager();
    const auth = authFor(m, origin);
    const app = new Hono();
    app.get('/auth/login', (c) => auth.login(c.req.raw));
    app.get('/auth/callback', (c) => auth.callback(c.req.raw));
    app.post('/auth/logout', (c) => auth.logout(c.req.raw));
    app.get('/', async (c) => c.html(home(await auth.sessionFor(c.req.raw))));
    app.get('/account', async (c) => c.html(home(await auth.sessionFor(c.req.raw))));
    app.get('/api/me', async (c) => {
      const { status, body } = await api(await auth.sessionFor(c.req.raw));
      return c.json(body as object, status as 200);
    });
    const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
    try {
      await signInCallSignOut(origin);

      // Sign in again, then read the cookie with other key lists.
      await page.goto(`${origin}/auth/login?returnTo=/account`);
      await signIn(page, undefined, () => page.url() === `${origin}/account`);
      const value = (await context.cookies(origin)).find((c) => c.name === 'tk_session')?.value as string;
      const ask = (a: WebAuth, v = value) =>
        a.sessionFor(new Request(`${origin}/`, { headers: { cookie: `tk_session=${v}` } }));
      expect((await ask(authFor(m, origin, [KEY_B, KEY_A])))?.claims?.sub).toBe('alice'); // an older key, still listed
      expect(await ask(authFor(m, origin, [KEY_B]))).toBeUndefined(); // a retired key
      const [id, signature] = value.split('.') as [string, string];
      const flipped = `${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}.${signature}`;
      expect(await ask(auth, flipped)).toBeUndefined(); // tampered
      expect(await ask(auth, id)).toBeUndefined(); // unsigned
    } finally {
      server.close();
    }
  });
});

describe('Fastify (tokenkeeper/fastify)', () => {
  it('signs in, sets request.tokenkeeper, signs out with revocation', async () => {
    const port = await unusedPort();
    const origin = `http://127.0.0.1:${port}`;
    const auth = authFor(manager(), origin);
    const app = Fastify();
    await app.register(fastifyAuth(auth));
    type Req = { tokenkeeper?: Session };
    app.get('/', async (req, reply) => reply.type('text/html').send(home((req as Req).tokenkeeper)));
    app.get('/account', async (req, reply) => reply.type('text/html').send(home((req as Req).tokenkeeper)));
    app.get('/api/me', async (req, reply) => {
      const { status, body } = await api((req as Req).tokenkeeper);
      return reply.code(status).send(body);
    });
    await app.listen({ port, host: '127.0.0.1' });
    try {
      await signInCallSignOut(origin);
    } finally {
      await app.close();
    }
  });
});

describe('Express 5 (tokenkeeper/express) beside express-session', () => {
  it('signs in, sets req.tokenkeeper, signs out with revocation; the app keeps its own session', async () => {
    const port = await unusedPort();
    const origin = `http://127.0.0.1:${port}`;
    const auth = authFor(manager(), origin);
    const app = express();
    app.use(expressSession({ secret: 'the-app-own-session-secret', resave: false, saveUninitialized: true }));
    app.use(expressAuth(auth));
    app.get(['/', '/account'], (req: ExpressRequest, res) => {
      res.type('html').send(home(req.tokenkeeper));
    });
    app.get('/api/me', async (req: ExpressRequest, res) => {
      const { status, body } = await api(req.tokenkeeper);
      res.status(status).json(body);
    });
    const server = app.listen(port, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    expect((server.address() as AddressInfo).port).toBe(port);
    try {
      await signInCallSignOut(origin);
      // The app's own session cookie is untouched by the sign-in's.
      expect((await context.cookies(origin)).some((c) => c.name === 'connect.sid')).toBe(true);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
