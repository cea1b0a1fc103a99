/**
 * Page side of test/session/login-flows.browser.test.ts: a single-page app on the shipped browser
 * build (dist/browser/tokenkeeper.js) that logs in with authorize()/callback() as a public client.
 */
import type * as Tokenkeeper from '../../../src/index.js';

const BUILD = '/tokenkeeper.js'; // not bundled: the page imports the real build

export interface SpaConfig {
  issuer: string;
  clientId: string;
}

async function manager(config: SpaConfig) {
  const tk = (await import(/* @vite-ignore */ BUILD)) as typeof Tokenkeeper;
  return new tk.SessionManager({
    store: tk.indexedDbStore({ namespace: 'spa' }),
    issuer: config.issuer,
    client: { clientId: config.clientId },
  });
}

const loginPage = {
  /** Starts the login: the URL of the server's login page. */
  async start(config: SpaConfig): Promise<string> {
    const m = await manager(config);
    const { url } = await m.authorize({
      redirectUri: `${location.origin}/spa.html`,
      scope: 'openid offline_access api:read',
      prompt: 'consent',
    });
    return url;
  },
  /** Completes it from the page's own URL, then uses and refreshes the session. */
  async finish(config: SpaConfig) {
    const m = await manager(config);
    const session = await m.callback(location.href);
    history.replaceState(null, '', '/spa.html'); // the code is spent: off the address bar
    const first = await session.getAccessToken();
    const refreshed = await session.getAccessToken({ forceRefresh: true });
    const again = await m
      .callback(`${location.origin}/spa.html?code=x&state=${new URL(location.href).searchParams.get('state') ?? ''}`)
      .then(
        () => 'accepted',
        (e: { code?: string }) => e.code,
      );
    return { id: session.id, sub: session.claims?.sub, first: first.length > 0, rotated: refreshed !== first, again };
  },
};

Object.assign(globalThis, { loginPage });
