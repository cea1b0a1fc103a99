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
      expect(revocations - before).toBe(1);
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
