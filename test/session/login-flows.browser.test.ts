import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { memoryStore, SessionManager, type SessionManagerOptions, type Store } from '../../src/index.js';
import { loginWithBrowser } from '../../src/session/login/loopback.js';
import { fileStore } from '../../src/store/file/index.js';
import { launchChromium, type PageServer, startPageServer } from '../helpers/browser.js';
import { startChild } from '../helpers/child.js';
import { rejection } from '../helpers/errors.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';
import { offline, signIn as signInAs } from '../helpers/sign-in.js';

// Every login flow end to end: oidc-provider's own login and consent pages, driven in Chromium.

let op: RealAuthServer;
let pages: PageServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let store: Store;

beforeAll(async () => {
  pages = await startPageServer();
  op = await startRealAuthServer({ publicRedirectUris: [`${pages.origin}/spa.html`] });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await op?.close();
  await pages?.close();
});
beforeEach(async () => {
  store = memoryStore();
  context = await browser.newContext(); // no login session carried from one test to the next
  await offline(context);
  page = await context.newPage();
});
afterEach(async () => {
  await context?.close();
  await store.close();
});

const scope = 'openid offline_access api:read';
/** oidc-provider grants offline_access (a refresh token) only with prompt=consent, as OpenID Connect says. */
const prompt = 'consent';

function options(extra: Partial<SessionManagerOptions> = {}): SessionManagerOptions {
  return { store, issuer: op.issuer, client: { clientId: op.clientId, clientSecret: op.clientSecret }, ...extra };
}

const signIn = (url: string, done: () => Promise<boolean> | boolean, fill: Record<string, string> = {}) =>
  signInAs(page, url, done, fill);
const at = (prefix: string) => () => page.url().startsWith(prefix);

/** A redirect URI that only records what arrives: the callback is then the test's to use. */
async function startCapture(): Promise<{ redirectUri: string; landed: () => string; close(): Promise<void> }> {
  let landed = '';
  const server = createServer((req, res) => {
    landed = new URL(req.url ?? '/', `http://${req.headers.host}`).href;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('captured');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  captures.push(server);
  return {
    redirectUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`,
    landed: () => landed,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
const captures: Server[] = [];
afterEach(() => {
  for (const c of captures.splice(0)) {
    c.closeAllConnections();
    c.close();
  }
});

/** A login's callback URL, as the browser was redirected to it. */
async function callbackUrl(manager: SessionManager, extra = {}) {
  const capture = await startCapture();
  const { url, state } = await manager.authorize({ redirectUri: capture.redirectUri, scope, prompt, ...extra });
  await signIn(url, () => capture.landed() !== '');
  return { landed: capture.landed(), state };
}

/** A tiny web app: its /callback completes the login with `manager`. */
async function startApp(manager: SessionManager): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    if (url.pathname !== '/callback') return void res.writeHead(404).end();
    // The Request itself, as a Web-standard server hands it over.
    manager.callback(new Request(url, { method: 'GET' })).then(
      (session) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`signed in as ${session.id}`),
      (error: { code?: string }) => res.writeHead(400).end(String(error.code)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('authorization code with PKCE, from a Node app', () => {
  it('logs in through the real login page; the callback lands on another manager sharing the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-login-'));
    try {
      const starter = new SessionManager(options({ store: fileStore({ path: dir }) }));
      const receiver = new SessionManager(options({ store: fileStore({ path: dir }) }));
      const app = await startApp(receiver);
      const { url, state } = await starter.authorize({ redirectUri: `${app.origin}/callback`, scope, prompt });
      const authorizeUrl = new URL(url);
      expect(authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');
      expect(authorizeUrl.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
      expect(authorizeUrl.searchParams.get('state')).toBe(state);
      expect(authorizeUrl.searchParams.get('nonce')).toMatch(/^[\w-]{20,}$/);
      await signIn(url, at(`${app.origin}/callback`));
      expect(await page.textContent('body')).toBe('signed in as alice');
      await app.close();

      const session = await receiver.get('alice');
      expect(session?.claims).toMatchObject({ sub: 'alice', iss: op.issuer, aud: op.clientId });
      expect(session?.tokens.idToken).toBeUndefined(); // only the claims are kept
      expect(session?.grant).toBe('authorization_code');
      const before = await session?.getAccessToken();
      expect(await session?.getAccessToken({ forceRefresh: true })).not.toBe(before);
      expect(op.counts.refresh_token).toBeGreaterThanOrEqual(1);
      const revocations = op.counts.revocations;
      expect(await session?.logout()).toEqual({ revoked: true, refreshToken: 'revoked', accessToken: 'revoked' });
      expect(op.counts.revocations).toBe(revocations + 2); // the refresh token, then the access token
      await starter.close();
      await receiver.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stores the session under the id given to authorize(), and without openid needs one', async () => {
    const manager = new SessionManager(options());
    const { landed } = await callbackUrl(manager, { sessionId: 'my-user', scope: 'offline_access api:read' });
    const session = await manager.callback(landed);
    expect(session.id).toBe('my-user');
    expect(session.claims).toBeUndefined();
    expect(
      new URL(
        (await manager.authorize({ redirectUri: 'http://127.0.0.1/cb', scope: 'api:read' })).url,
      ).searchParams.has('nonce'),
    ).toBe(false);
  });

  it('completes a replayed callback once, also across processes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-replay-'));
    try {
      const manager = new SessionManager(options({ store: fileStore({ path: dir }) }));
      const { landed } = await callbackUrl(manager);
      const go = join(dir, 'go');
      const config = JSON.stringify({ dir, issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret });
      const children = [0, 1, 2].map(() => startChild('callback-worker.ts', [config, landed, go]));
      await new Promise((r) => setTimeout(r, 1_500)); // all started and waiting
      writeFileSync(go, '');
      const outcomes = (await Promise.all(children.map((c) => c.done))).map(
        (r) => JSON.parse(r.stdout.trim()) as { ok: boolean; code?: string },
      );
      expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
      expect(outcomes.filter((o) => o.code === 'TOKENKEEPER_LOGIN_STATE')).toHaveLength(2);
      expect(op.counts.authorization_code).toBeGreaterThanOrEqual(1);
      const again = await rejection(manager.callback(landed));
      expect(again.code).toBe('TOKENKEEPER_LOGIN_STATE');
      await manager.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('callback refusals, each with its typed error', () => {
  it('the user cancels on the login page: ACCESS_DENIED with the server description', async () => {
    const manager = new SessionManager(options());
    const capture = await startCapture();
    const { url } = await manager.authorize({ redirectUri: capture.redirectUri, scope, prompt });
    await page.goto(url);
    await Promise.all([page.waitForNavigation(), page.click('a[href*="abort"]')]);
    const landed = capture.landed();
    expect(new URL(landed).searchParams.get('error')).toBe('access_denied');
    const err = await rejection(manager.callback(landed));
    expect(err.code).toBe('TOKENKEEPER_ACCESS_DENIED');
    expect(err.message).toContain('access_denied');
    expect(err.message).toMatch(/: \S/); // the server's description follows
  });

  it('a callback with an iss of another server (mix-up): AUTHORIZATION_RESPONSE, no code sent', async () => {
    const manager = new SessionManager(options());
    const { landed } = await callbackUrl(manager);
    const forged = new URL(landed);
    expect(forged.searchParams.get('iss')).toBe(op.issuer);
    forged.searchParams.set('iss', 'https://attacker.example');
    const codes = op.counts.authorization_code;
    const err = await rejection(manager.callback(forged));
    expect(err.code).toBe('TOKENKEEPER_AUTHORIZATION_RESPONSE');
    expect(err.message).toContain('iss');
    expect(op.counts.authorization_code).toBe(codes);
  });

  it('an ID token whose nonce is not the login’s: ID_TOKEN, nothing stored', async () => {
    const manager = new SessionManager(options());
    const { landed, state } = await callbackUrl(manager);
    const key = `tokenkeeper:login:${state}`;
    const pending = await store.get(key);
    await store.set(key, { ...pending?.value, nonce: 'another-nonce-entirely' });
    const err = await rejection(manager.callback(landed));
    expect(err.code).toBe('TOKENKEEPER_ID_TOKEN');
    expect(err.message).toContain('nonce');
    expect(await manager.get('alice')).toBeUndefined();
  });

  it('an ID token with a bad signature: ID_TOKEN', async () => {
    // The server's JWKS answered with another key: the ID token's signature cannot verify.
    const { generateKeyPairSync } = await import('node:crypto');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    const swapJwks: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input instanceof Request ? input.url : input).includes('/jwks')) return response;
      const { keys } = (await response.json()) as { keys: { kid?: string; alg?: string }[] };
      const forged = keys.map((k) => ({ ...other, kid: k.kid, alg: k.alg, use: 'sig' }));
      return Response.json({ keys: forged });
    };
    const manager = new SessionManager(options({ fetch: swapJwks }));
    const { landed } = await callbackUrl(manager);
    const err = await rejection(manager.callback(landed));
    expect(err.code).toBe('TOKENKEEPER_ID_TOKEN');
    expect(await manager.get('alice')).toBeUndefined();
  });

  it('a missing, unknown or expired state: LOGIN_STATE', async () => {
    const manager = new SessionManager(options({ pendingLoginTtlMs: 1_500 }));
    const { landed } = await callbackUrl(manager);
    const codes = op.counts.authorization_code;
    const withoutState = new URL(landed);
    withoutState.searchParams.delete('state');
    expect((await rejection(manager.callback(withoutState))).code).toBe('TOKENKEEPER_LOGIN_STATE');
    const wrong = new URL(landed);
    wrong.searchParams.set('state', 'a-state-this-manager-never-issued');
    expect((await rejection(manager.callback(wrong))).code).toBe('TOKENKEEPER_LOGIN_STATE');
    await new Promise((r) => setTimeout(r, 1_600));
    const expired = await rejection(manager.callback(landed));
    expect(expired.code).toBe('TOKENKEEPER_LOGIN_STATE');
    expect(op.counts.authorization_code).toBe(codes); // no code was ever sent
  });
});

describe('a single-page app (public client) on the browser build', () => {
  it('logs in with authorize()/callback() in the page and refreshes with rotation', async () => {
    const config = { issuer: op.issuer, clientId: op.publicClientId };
    await page.goto(`${pages.origin}/spa.html`);
    await page.waitForFunction(() => 'loginPage' in globalThis);
    const url = await page.evaluate(
      (c) => (globalThis as never as { loginPage: { start(c: unknown): Promise<string> } }).loginPage.start(c),
      config,
    );
    await signIn(url, at(`${pages.origin}/spa.html?`));
    await page.waitForFunction(() => 'loginPage' in globalThis);
    const result = await page.evaluate(
      (c) => (globalThis as never as { loginPage: { finish(c: unknown): Promise<unknown> } }).loginPage.finish(c),
      config,
    );
    expect(result).toEqual({ id: 'alice', sub: 'alice', first: true, rotated: true, again: 'TOKENKEEPER_LOGIN_STATE' });
  });
});

describe('loginWithBrowser: the loopback redirect of CLIs and desktop apps', () => {
  it('logs in through the browser and closes its listener', async () => {
    const manager = new SessionManager(options({ client: { clientId: op.publicClientId } }));
    let listener = '';
    const session = await loginWithBrowser(manager, {
      scope,
      prompt,
      open: async (url) => {
        listener = new URL(url).searchParams.get('redirect_uri') as string;
        await signIn(url, at(listener));
      },
    });
    expect(listener).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(await page.textContent('h1')).toBe('Signed in');
    expect(session.claims?.sub).toBe('alice');
    expect(session.tokens.refreshToken).toBeTruthy();
    const closed = await fetch(listener).then(
      () => 'open',
      () => 'closed',
    );
    expect(closed).toBe('closed');
  });

  it('a pushed authorization request (RFC 9126): the login URL carries only the request_uri', async () => {
    const manager = new SessionManager(options());
    let opened = '';
    const session = await loginWithBrowser(manager, {
      scope,
      prompt,
      par: true,
      open: async (url) => {
        opened = url;
        // The URL names no redirect URI: the login ends on the listener's /callback.
        await signIn(url, () => new URL(page.url()).pathname === '/callback');
      },
    });
    const url = new URL(opened);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect(session.claims?.sub).toBe('alice');
    expect(session.tokens.refreshToken).toBeTruthy();
  });

  it('answers 404 to any other path, 400 to another state, and 409 to a second callback', async () => {
    const manager = new SessionManager(options({ client: { clientId: op.publicClientId } }));
    const statuses: Record<string, number> = {};
    const answers: number[] = [];
    let second: Promise<void> | undefined;
    const session = await loginWithBrowser(manager, {
      scope,
      prompt,
      open: async (url) => {
        const redirectUri = new URL(url).searchParams.get('redirect_uri') as string;
        statuses.other = (await fetch(`${new URL(redirectUri).origin}/favicon.ico`)).status;
        statuses.wrongState = (await fetch(`${redirectUri}?code=x&state=not-this-login`)).status;
        // The same callback sent again while the browser's is being completed.
        page.on('response', (r) => {
          if (r.url().startsWith(redirectUri)) answers.push(r.status());
        });
        page.on('request', (r) => {
          if (r.url().startsWith(redirectUri) && second === undefined) {
            second = fetch(r.url()).then((res) => void answers.push(res.status));
          }
        });
        await signIn(url, at(redirectUri));
        await second;
      },
    });
    expect(statuses).toEqual({ other: 404, wrongState: 400 });
    expect(answers.sort()).toEqual([200, 409]);
    expect(session.id).toBe('alice');
  });

  it('open: true starts the system browser (xdg-open) on a one-time start address (no state or PKCE challenge on its command line), and prints it when there is none', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'tk-open-'));
    const opened = join(bin, 'opened-url');
    // Records its whole command line, as any local user can read it (ps, /proc/<pid>/cmdline).
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$*" > '${opened}'\n`, { mode: 0o755 });
    const path = process.env.PATH;
    const write = process.stderr.write;
    let printed = '';
    try {
      const manager = new SessionManager(options({ client: { clientId: op.publicClientId } }));
      /** Resolves with what `read` finds within 10 s. */
      const found = async (read: () => string | undefined) => {
        for (let i = 0; i < 200; i++) {
          const text = read();
          if (text) return text;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error('nothing to open the login page with');
      };
      const readOpened = () => {
        try {
          return readFileSync(opened, 'utf8');
        } catch {
          return undefined;
        }
      };
      // A system browser on PATH: it gets the URL, and the user signs in there.
      process.env.PATH = `${bin}:${path}`;
      const viaBrowser = loginWithBrowser(manager, { scope, prompt, sessionId: 'opened' });
      const url = await found(readOpened);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/start\/[0-9a-f]{32}$/);
      for (const secret of ['state', 'code_challenge', 'nonce', 'redirect_uri', op.issuer])
        expect(url).not.toContain(secret);
      await signIn(url, at(`${new URL(url).origin}/callback`));
      expect((await viaBrowser).id).toBe('opened');
      // None on PATH: the URL is printed for the user to open.
      process.env.PATH = join(bin, 'empty');
      process.stderr.write = ((chunk: string | Uint8Array) => {
        printed += String(chunk);
        return true;
      }) as typeof process.stderr.write;
      const viaPrint = loginWithBrowser(manager, { scope, prompt, sessionId: 'printed' });
      const shown = await found(() => printed.match(/Open this address in your browser to log in:\n(\S+)\n/)?.[1]);
      process.stderr.write = write;
      await signIn(shown, at(`${new URL(shown).origin}/callback`));
      expect((await viaPrint).id).toBe('printed');
    } finally {
      process.env.PATH = path;
      process.stderr.write = write;
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('gives up after timeoutMs with LOGIN_ABORTED, and refuses open: false without onUrl', async () => {
    const manager = new SessionManager(options());
    const err = await rejection(loginWithBrowser(manager, { scope, open: () => {}, timeoutMs: 300 }));
    expect(err.code).toBe('TOKENKEEPER_LOGIN_ABORTED');
    const bad = await rejection(loginWithBrowser(manager, { open: false }));
    expect(bad.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(bad.message).toContain('onUrl');
  });
});

describe('device flow, the user code entered in a browser', () => {
  it('logs in once the user enters the code and approves', async () => {
    const manager = new SessionManager(options({ client: { clientId: op.publicClientId } }));
    const session = await manager.login(
      {
        grant: 'device_code',
        scope,
        onPrompt: async ({ userCode, verificationUri }) => {
          expect(verificationUri).toBe(`${op.issuer}/device`);
          await signIn(verificationUri, async () => (await page.title()) === 'Sign-in Success', {
            user_code: userCode,
          });
        },
      },
      { sessionId: 'tv' },
    );
    expect(session.id).toBe('tv');
    expect(session.tokens.refreshToken).toBeTruthy();
    expect(op.counts.device_code).toBe(1);
    expect(await session.getAccessToken({ forceRefresh: true })).toBeTruthy();
  }, 40_000);
});

describe('client authentication and token exchange', () => {
  it('private_key_jwt: a login, its refresh and its revocation all authenticate with the private key', async () => {
    const manager = new SessionManager(
      options({ client: { clientId: op.privateKeyClientId, privateKey: op.privateKeyJwk } }),
    );
    const session = await loginWithBrowser(manager, {
      scope,
      prompt,
      open: (url) => signIn(url, at(new URL(url).searchParams.get('redirect_uri') as string)),
    });
    await session.getAccessToken({ forceRefresh: true });
    const revocations = op.counts.revocations;
    expect(await session.logout()).toEqual({ revoked: true, refreshToken: 'revoked', accessToken: 'revoked' });
    expect(op.counts.revocations).toBe(revocations + 2); // the refresh token, then the access token
    // A CryptoKey works as well as a JWK; a wrong key is refused as invalid_client.
    const key = await crypto.subtle.importKey('jwk', op.privateKeyJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
    ]);
    const withKey = new SessionManager(
      options({ client: { clientId: op.privateKeyClientId, privateKey: key, keyId: 'client-key-1' } }),
    );
    expect((await withKey.login({ grant: 'client_credentials' })).tokens.accessToken).toBeTruthy();
    const { generateKeyPairSync } = await import('node:crypto');
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const wrong = new SessionManager(
      options({
        client: { clientId: op.privateKeyClientId, privateKey: { ...stranger, kid: 'client-key-1' } as JsonWebKey },
      }),
    );
    expect((await rejection(wrong.login({ grant: 'client_credentials' }))).code).toBe('TOKENKEEPER_INVALID_CLIENT');
  });

  it('client_secret_jwt: client credentials and revocation', async () => {
    const manager = new SessionManager(
      options({
        client: { clientId: op.secretJwtClientId, clientSecret: op.clientSecret, authMethod: 'client_secret_jwt' },
      }),
    );
    const session = await manager.login({ grant: 'client_credentials', scope: 'api:read' });
    expect(session.tokens.accessToken).toBeTruthy();
    expect((await session.logout()).revoked).toBe(true);
  });

  it('token exchange: a token of the server exchanged for a session of this client', async () => {
    const issuer = new SessionManager(options());
    const subject = await (await issuer.login({ grant: 'client_credentials', scope: 'api:read' })).getAccessToken();
    const manager = new SessionManager(options({ client: { clientId: op.publicClientId } }));
    const session = await manager.login(
      {
        grant: 'token_exchange',
        subjectToken: subject,
        subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
        audience: 'https://api.example',
      },
      { sessionId: 'delegated' },
    );
    expect(session.tokens.accessToken).not.toBe(subject);
    expect(op.counts.token_exchange).toBe(1);
    const refused = await rejection(
      manager.login({
        grant: 'token_exchange',
        subjectToken: 'not-a-token',
        subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      }),
    );
    expect(refused.code).toBe('TOKENKEEPER_INVALID_GRANT');
    expect(refused.message).not.toContain('not-a-token');
  });
});
