import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from '../../src/exports/redis.js';
import { SessionManager } from '../../src/index.js';
import { launchChromium } from '../helpers/browser.js';
import { unusedPort } from '../helpers/fake-as.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';
import { REDIS_URL } from '../helpers/services.js';
import { offline, signIn } from '../helpers/sign-in.js';

// examples/web-app.ts as its users run it: Express, the Redis store, 4 node:cluster workers.
// Three users sign in through oidc-provider's login page in Chromium; their tokens end at the
// server; every worker then serves their API route at once: one refresh per user.

const root = fileURLToPath(new URL('../..', import.meta.url));
const USERS = ['alice', 'bob', 'carol'];
const REQUESTS_PER_USER = 24;
const namespace = `webapp_${randomBytes(4).toString('hex')}`;
let op: RealAuthServer;
let browser: Browser;
let port: number;
let origin: string;
let app: { child: ChildProcess; stop(): Promise<void> } | undefined;
const contexts = new Map<string, BrowserContext>();

function startApp(): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/web-app.ts'], {
    cwd: root,
    env: {
      ...process.env,
      ISSUER: op.issuer,
      CLIENT_ID: op.clientId,
      CLIENT_SECRET: op.clientSecret,
      COOKIE_KEY: 'the-example-cookie-key-of-32-characters-or-more',
      PORT: String(port),
      REDIS_URL,
      NAMESPACE: namespace,
      WORKERS: '4',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the web app did not start:\n${output}`)), 30_000);
    const seen = (d: Buffer) => {
      output += d;
      if (output.includes('4 workers on')) {
        clearTimeout(timer);
        resolve({
          child,
          stop: async () => {
            child.kill('SIGTERM');
            await exited;
          },
        });
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (code) => reject(new Error(`the web app exited with ${code}:\n${output}`)));
  });
}

/** A fresh connection per request, so the cluster spreads them over its workers. */
async function call(user: string, path = '/api/me'): Promise<{ status: number; body: { worker?: number } }> {
  const cookie = (await contexts.get(user)?.cookies(origin))?.find((c) => c.name === 'tk_session');
  const response = await fetch(`${origin}${path}`, {
    headers: { cookie: `tk_session=${cookie?.value ?? ''}`, connection: 'close' },
  });
  return { status: response.status, body: (await response.json()) as { worker?: number } };
}

beforeAll(async () => {
  op = await startRealAuthServer();
  browser = await launchChromium();
  port = await unusedPort();
  origin = `http://127.0.0.1:${port}`;
  app = await startApp();
}, 60_000);
afterAll(async () => {
  await app?.stop();
  await browser?.close();
  await op?.close();
  const store = redisStore({ url: REDIS_URL, namespace });
  for await (const key of store.keys()) await store.delete(key, { force: true });
  await store.close();
});

describe('the 4-worker Express example', () => {
  it('three users sign in through the real login page', async () => {
    for (const user of USERS) {
      const context = await browser.newContext();
      await offline(context);
      contexts.set(user, context);
      const page = await context.newPage();
      await page.goto(`${origin}/`);
      expect(await page.textContent('h1')).toBe('Signed out');
      await Promise.all([page.waitForNavigation(), page.click('#login')]);
      await signIn(page, undefined, () => page.url() === `${origin}/`, { login: user });
      expect(await page.textContent('#user')).toBe(user);
    }
  }, 60_000);

  it('tokens ended at the server, all workers at once: one refresh per user, every request answered', async () => {
    // Each user's access token expires: ended at the server, and its stored expiry in the past
    // (the record as the store holds it after the token's lifetime).
    const reader = new SessionManager({
      store: redisStore({ url: REDIS_URL, namespace }),
      issuer: op.issuer,
      client: { clientId: op.clientId, clientSecret: op.clientSecret },
    });
    for (const user of USERS) {
      const cookie = (await contexts.get(user)?.cookies(origin))?.find((c) => c.name === 'tk_session');
      const session = await reader.get(String(cookie?.value).split('.')[0] as string);
      expect(session?.claims?.sub).toBe(user);
      await op.expireAccessToken(session?.tokens.accessToken as string);
      const key = `tokenkeeper:s:${session?.id}`;
      const entry = await reader.store.get(key);
      const value = structuredClone(entry?.value) as { tokens: { expiresAt: number } };
      value.tokens.expiresAt = Date.now() - 1_000;
      await reader.store.set(key, value as never, { ifVersion: entry?.version });
    }
    await reader.store.close();
    const before = op.counts.refresh_token;
    const results = await Promise.all(
      USERS.flatMap((user) => Array.from({ length: REQUESTS_PER_USER }, () => call(user))),
    );
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    const workers = new Set(results.map((r) => r.body.worker));
    expect(workers.size).toBeGreaterThan(1); // served by several processes
    expect(op.counts.refresh_token - before).toBe(USERS.length);
    expect(op.counts.errors).toBe(0);
  }, 60_000);

  it('all workers restarted: the users are still signed in, with no new login or refresh', async () => {
    await app?.stop();
    app = await startApp();
    const before = op.counts.refresh_token;
    for (const user of USERS) expect((await call(user)).status).toBe(200);
    expect(op.counts.refresh_token).toBe(before);
  }, 60_000);

  it('signing out revokes the user’s tokens at the server and ends the session everywhere', async () => {
    const page = await contexts.get('alice')?.newPage();
    if (page === undefined) throw new Error('no browser for alice');
    await page.goto(`${origin}/`);
    const revocations = op.counts.revocations;
    await Promise.all([page.waitForNavigation(), page.click('#logout')]);
    expect(await page.textContent('h1')).toBe('Signed out');
    expect(op.counts.revocations).toBe(revocations + 2); // the refresh token, then the access token
    expect((await call('alice')).status).toBe(401);
    expect((await call('bob')).status).toBe(200);
  }, 30_000);
});
