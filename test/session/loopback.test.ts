import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginWithBrowser } from '../../src/exports/loopback.js';
import { memoryStore, SessionManager, type Store } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import { startJsonServer } from '../helpers/json-server.js';

// The loopback login's edges: a timeout or an abort while the code is being redeemed, and what
// the browser page shows for a hostile error answer. The server: a token endpoint of our own
// that redeems any code slowly, and counts revocations.

let server: Awaited<ReturnType<typeof startJsonServer>>;
let tokenDelayMs = 0;
let revocations = 0;
let issued = 0;

beforeAll(async () => {
  server = await startJsonServer(async ({ url, json }) => {
    if (url.pathname === '/token') {
      await new Promise((r) => setTimeout(r, tokenDelayMs));
      issued++;
      return json(200, {
        access_token: `at-${issued}`,
        refresh_token: `rt-${issued}`,
        token_type: 'Bearer',
        expires_in: 3600,
      });
    }
    if (url.pathname === '/revoke') {
      revocations++;
      return json(200, {});
    }
    return json(404, {});
  });
});
afterAll(() => server?.close());

const managerOn = (store: Store) =>
  new SessionManager({
    store,
    authorizationEndpoint: `${server.base}/authorize`,
    tokenEndpoint: `${server.base}/token`,
    revocationEndpoint: `${server.base}/revoke`,
    client: { clientId: 'cli' },
  });

async function sessionKeys(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const k of store.keys('tokenkeeper:s:')) out.push(k);
  return out;
}

/** The browser: follows the login URL straight to the loopback callback with a code. */
function browserAnswering(query: (state: string) => string, pages: Promise<Response>[]) {
  return (url: string) => {
    const u = new URL(url);
    const callback = `${u.searchParams.get('redirect_uri')}?${query(u.searchParams.get('state') as string)}`;
    pages.push(fetch(callback));
  };
}

describe('loginWithBrowser while the code is being redeemed', () => {
  it('a timeout lets the redemption finish: the login succeeds, and what is stored is what was returned', async () => {
    const store = memoryStore();
    tokenDelayMs = 800;
    const pages: Promise<Response>[] = [];
    try {
      const session = await loginWithBrowser(managerOn(store), {
        sessionId: 'cli-user',
        timeoutMs: 300,
        open: browserAnswering((state) => `code=c&state=${state}`, pages),
      });
      expect(session.id).toBe('cli-user');
      expect(await sessionKeys(store)).toEqual(['tokenkeeper:s:cli-user']);
      const page = await pages[0];
      expect(page?.status).toBe(200);
      expect(await page?.text()).toContain('Signed in');
    } finally {
      tokenDelayMs = 0;
    }
  }, 15_000);

  it('an abort does not wait, but what the redemption stores is revoked and deleted before the login rejects', async () => {
    const store = memoryStore();
    tokenDelayMs = 800;
    const before = revocations;
    const pages: Promise<Response>[] = [];
    const controller = new AbortController();
    try {
      const login = loginWithBrowser(managerOn(store), {
        sessionId: 'cli-user',
        signal: controller.signal,
        open: browserAnswering((state) => `code=c&state=${state}`, pages),
      });
      setTimeout(() => controller.abort(), 300);
      const error = await rejection(login);
      expect(error.code).toBe('TOKENKEEPER_LOGIN_ABORTED');
      expect(await sessionKeys(store)).toEqual([]); // nothing orphaned
      expect(revocations - before).toBe(2); // its refresh token, then its access token
      const page = await pages[0];
      expect(await page?.text()).toContain('stopped waiting');
    } finally {
      tokenDelayMs = 0;
    }
  }, 15_000);
});

describe('loginWithBrowser and a hostile error answer', () => {
  it('shows the description escaped, under a CSP that loads nothing', async () => {
    const pages: Promise<Response>[] = [];
    const description = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    const error = await rejection(
      loginWithBrowser(managerOn(memoryStore()), {
        sessionId: 'cli-user',
        open: browserAnswering(
          (state) => `error=access_denied&error_description=${encodeURIComponent(description)}&state=${state}`,
          pages,
        ),
      }),
    );
    expect(error.code).toBe('TOKENKEEPER_ACCESS_DENIED');
    const page = (await pages[0]) as Response;
    expect(page.headers.get('content-security-policy')).toBe("default-src 'none'");
    const html = await page.text();
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;');
  }, 15_000);
});

describe('loginWithBrowser opens the system browser on a one-time local start address', () => {
  /** A fake `xdg-open` first on PATH: records its command line, as any local user could read it. */
  async function withFakeOpener<T>(fn: (commandLine: () => Promise<string>) => Promise<T>): Promise<T> {
    const bin = mkdtempSync(join(tmpdir(), 'tk-open-'));
    const log = join(bin, 'argv');
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$*" > "${log}.tmp" && mv "${log}.tmp" "${log}"\n`);
    chmodSync(join(bin, 'xdg-open'), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}${delimiter}${path}`;
    try {
      return await fn(async () => {
        for (let i = 0; i < 200 && !existsSync(log); i++) await new Promise((r) => setTimeout(r, 25));
        return readFileSync(log, 'utf8');
      });
    } finally {
      process.env.PATH = path;
      rmSync(bin, { recursive: true, force: true });
    }
  }

  it.skipIf(process.platform !== 'linux')(
    'the command line carries no state, code challenge or nonce; the start address redirects once to the login page',
    async () => {
      await withFakeOpener(async (commandLine) => {
        const store = memoryStore();
        const login = loginWithBrowser(managerOn(store), {
          sessionId: 'me',
          onUrl: () => {},
        });
        const opened = await commandLine();
        expect(opened).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/start\/[0-9a-f]{32}$/);
        for (const secret of ['state', 'code_challenge', 'nonce', 'authorize']) expect(opened).not.toContain(secret);
        const start = await fetch(opened, { redirect: 'manual' });
        expect(start.status).toBe(302);
        expect(start.headers.get('cache-control')).toBe('no-store');
        const to = new URL(start.headers.get('location') as string);
        expect(to.origin + to.pathname).toBe(`${server.base}/authorize`);
        const state = to.searchParams.get('state') as string;
        expect(to.searchParams.get('code_challenge')).toBeTruthy();
        expect(opened).not.toContain(state);
        const page = await fetch(`${to.searchParams.get('redirect_uri')}?code=c&state=${state}`);
        expect(page.status).toBe(200);
        expect((await login).id).toBe('me');
      });
    },
    15_000,
  );

  it.skipIf(process.platform !== 'linux')(
    'opened twice (another local program raced the browser to it): the login stops, and no code is taken',
    async () => {
      await withFakeOpener(async (commandLine) => {
        const store = memoryStore();
        const login = loginWithBrowser(managerOn(store), { sessionId: 'me', onUrl: () => {} });
        const failed = rejection(login);
        const opened = await commandLine();
        // The other program, first: it learns the login URL...
        const stolen = new URL((await fetch(opened, { redirect: 'manual' })).headers.get('location') as string);
        // ...then the user's browser arrives: the login stops.
        const browser = await fetch(opened, { redirect: 'manual' });
        expect(browser.status).toBe(409);
        expect(await browser.text()).toContain('already used');
        const error = await failed;
        expect(error.code).toBe('TOKENKEEPER_LOGIN_ABORTED');
        expect(error.message).toContain('opened twice');
        // The other program's code, with the right state, comes too late: nothing is redeemed or stored.
        const before = issued;
        await fetch(
          `${stolen.searchParams.get('redirect_uri')}?code=theirs&state=${stolen.searchParams.get('state')}`,
        ).catch(() => undefined);
        expect(issued).toBe(before);
        expect(await sessionKeys(store)).toEqual([]);
      });
    },
    15_000,
  );
});

describe('the loopback listener', () => {
  const get = (port: number, path: string, host: string, address = '127.0.0.1') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: address, port, path, headers: { host } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('answers on 127.0.0.1 only, to its own Host only (no DNS rebinding): a foreign Host redeems nothing', async () => {
    const store = memoryStore();
    const before = issued;
    let url = '';
    const controller = new AbortController();
    const login = loginWithBrowser(managerOn(store), {
      sessionId: 'me',
      signal: controller.signal,
      open: (u) => {
        url = u;
      },
    });
    for (let i = 0; i < 100 && url === ''; i++) await new Promise((r) => setTimeout(r, 10));
    const callback = new URL(new URL(url).searchParams.get('redirect_uri') as string);
    const state = new URL(url).searchParams.get('state') as string;
    const port = Number(callback.port);
    const rebound = await get(port, `${callback.pathname}?code=c&state=${state}`, `evil.example:${port}`);
    expect(rebound.status).toBe(400);
    expect(rebound.body).toContain('Wrong host');
    const localhost = await get(port, `${callback.pathname}?code=c&state=${state}`, `localhost:${port}`);
    expect(localhost.status).toBe(400);
    await expect(get(port, '/', `[::1]:${port}`, '::1')).rejects.toThrow(); // not listening there
    expect(issued).toBe(before);
    controller.abort();
    expect((await rejection(login)).code).toBe('TOKENKEEPER_LOGIN_ABORTED');
    expect(await sessionKeys(store)).toEqual([]);
  }, 15_000);
});
