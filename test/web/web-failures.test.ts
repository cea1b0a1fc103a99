import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressAuth } from '../../src/exports/express.js';
import { redisStore } from '../../src/exports/redis.js';
import { webAuth } from '../../src/exports/web.js';
import { SessionManager } from '../../src/index.js';
import { type PrivateRedis, startPrivateRedis } from '../helpers/private-redis.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// What an anonymous visitor sees when the sign-in fails on the server's side: a generic page with
// a reference, never the store's host, port or password. The details go to `onError`.

const fixture = useFakeAuthServer();
const KEY = 'a-cookie-key-of-at-least-32-characters!';
const PASSWORD = 'hunter2secret';
let redis: PrivateRedis;

beforeAll(async () => {
  redis = await startPrivateRedis('none');
});
afterAll(async () => {
  await redis?.stop();
});

describe('a store outage during the callback (Express, a Redis of its own cut while the code is redeemed)', () => {
  it('shows the visitor a generic page with a reference; the error, with the same reference, goes to onError; no password anywhere', async () => {
    const warnings: string[] = [];
    const store = redisStore({
      url: `${redis.url}/0?password=${PASSWORD}`,
      namespace: 'web_failures',
      onWarning: (w) => warnings.push(w.message),
    });
    const manager = new SessionManager(
      fixture.options({ store, authorizationEndpoint: `${fixture.as.issuer}/authorize` }),
    );
    const reports: { error: unknown; reference: string; route: string }[] = [];
    const auth = webAuth(manager, {
      redirectUri: 'http://127.0.0.1/callback',
      scope: 'offline_access',
      cookie: { keys: [KEY] },
      onError: (error, c) => reports.push({ error, ...c }),
    });
    const app = express();
    app.use(expressAuth(auth, { basePath: '' }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const started = await fetch(`${base}/login`, { redirect: 'manual' });
      expect(started.status).toBe(302);
      const state = new URL(started.headers.get('location') as string).searchParams.get('state');
      const cookie = started.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');

      // Redis goes away while the server redeems the code: the session cannot be stored.
      fixture.as.latencyMs = 400;
      const answer = fetch(`${base}/callback?code=good-code&state=${state}`, {
        headers: { cookie },
        redirect: 'manual',
      });
      await new Promise((r) => setTimeout(r, 150));
      await redis.stop();
      const response = await answer;
      const text = await response.text();

      expect(response.status).toBe(500);
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none'");
      const reference = text.match(/Reference: ([\w-]{8})\./)?.[1];
      expect(reference, text).toBeDefined();
      for (const leak of [PASSWORD, '127.0.0.1', new URL(redis.url).port, 'Redis', 'redis', 'TOKENKEEPER_'])
        expect(text).not.toContain(leak);
      expect(response.headers.getSetCookie().some((c) => c.includes('_login=;') && c.includes('Max-Age=0'))).toBe(true);

      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ reference, route: 'callback' });
      const error = reports[0]?.error as Error & { code: string };
      expect(error.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
      expect(error.message).toContain(`127.0.0.1:${new URL(redis.url).port}`); // the server log may say where
      const everything = [error.message, String(error.cause), JSON.stringify(error), store.name, ...warnings].join(
        '\n',
      );
      expect(everything).not.toContain(PASSWORD);
      expect(everything).not.toContain('password');
    } finally {
      fixture.as.latencyMs = 0;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await store.close();
      await redis.start();
    }
  }, 30_000);
});

describe('a store outage at login', () => {
  it('is a generic page with a reference too, not an exception with the store in its message', async () => {
    const store = redisStore({ url: `redis://:${PASSWORD}@127.0.0.1:1/0?password=${PASSWORD}` });
    const manager = new SessionManager(
      fixture.options({ store, authorizationEndpoint: `${fixture.as.issuer}/authorize` }),
    );
    const reports: { error: unknown; reference: string }[] = [];
    const auth = webAuth(manager, {
      redirectUri: 'http://127.0.0.1/callback',
      cookie: { keys: [KEY] },
      onError: (error, c) => reports.push({ error, ...c }),
    });
    try {
      const response = await auth.login(new Request('http://127.0.0.1/login'));
      expect(response.status).toBe(500);
      const text = await response.text();
      expect(text).toContain(`Reference: ${reports[0]?.reference}.`);
      expect(text).not.toContain('127.0.0.1');
      expect(response.headers.get('location')).toBeNull();
      expect(String((reports[0]?.error as Error | undefined)?.message)).not.toContain(PASSWORD);
      expect(store.name).not.toContain(PASSWORD);
    } finally {
      await store.close();
    }
  }, 30_000);
});

describe('a store outage on any page of the app', () => {
  it('the framework’s own error page (Express, development mode: the stack) names no host or port; the error goes to onError', async () => {
    const store = redisStore({
      url: `${redis.url}/0?password=${PASSWORD}`,
      namespace: 'web_pages',
      onWarning: () => {},
    });
    const manager = new SessionManager(fixture.options({ store }));
    const reports: { error: unknown; reference: string; route: string }[] = [];
    const auth = webAuth(manager, {
      redirectUri: 'http://127.0.0.1/auth/callback',
      cookie: { keys: [KEY] },
      onError: (error, c) => reports.push({ error, ...c }),
    });
    const app = express();
    app.use(expressAuth(auth));
    app.get('/me', (_req, res) => {
      res.send('hello');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const id = 'a'.repeat(43);
    const cookie = `tk_session=${id}.${createHmac('sha256', KEY).update(`tk_session=${id}`).digest('base64url')}`;
    try {
      await redis.stop();
      const response = await fetch(`${base}/me`, { headers: { cookie } });
      const text = await response.text();
      expect(response.status).toBe(500);
      for (const leak of [PASSWORD, new URL(redis.url).port, 'redis://']) expect(text).not.toContain(leak);
      expect(reports).toHaveLength(1);
      expect(reports[0]?.route).toBe('session');
      expect(text).toContain(`reference ${reports[0]?.reference}`);
      expect((reports[0]?.error as { code?: string } | undefined)?.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await store.close();
      await redis.start();
    }
  }, 30_000);
});
