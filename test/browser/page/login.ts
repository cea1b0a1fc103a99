/**
 * Page side of test/session/login-flows.browser.test.ts: a single-page app on the shipped browser
 * build (dist/browser/tokenkeeper.js) that logs in with authorize()/callback() as a public client.
 */
import type * as Tokenkeeper from '../../../src/index.js';

const BUILD = '/tokenkeeper.js'; // not bundled: the page imports the real build

export interface SpaConfig {
  issuer: string;
  clientId: string;
  /** DPoP-bound sessions, their keys non-extractable in IndexedDB. */
  dpop?: boolean;
}

async function manager(config: SpaConfig) {
  const tk = (await import(/* @vite-ignore */ BUILD)) as typeof Tokenkeeper;
  return new tk.SessionManager({
    store: tk.indexedDbStore({ namespace: config.dpop ? 'spa_dpop' : 'spa' }),
    issuer: config.issuer,
    client: { clientId: config.clientId },
    ...(config.dpop ? { dpop: true } : {}),
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
  /** Completes the login only (the DPoP tabs test). */
  async complete(config: SpaConfig) {
    const session = await (await manager(config)).callback(location.href);
    history.replaceState(null, '', '/spa.html');
    return { id: session.id, type: session.tokens.tokenType };
  },
  /** Puts the stored access token's expiry in the past. */
  async expire(config: SpaConfig, id: string) {
    const m = await manager(config);
    const key = `tokenkeeper:s:${id}`;
    const entry = await m.store.get(key);
    const value = structuredClone(entry?.value) as Record<string, { expiresAt?: number }>;
    (value.tokens as { expiresAt: number }).expiresAt = Date.now() - 1_000;
    await m.store.set(key, value as never, { ifVersion: entry?.version });
    return Object.keys(value.dpop ?? {});
  },
  /** The session's access token, and the API's answer to a call with it. */
  async use(config: SpaConfig, id: string) {
    const session = await (await manager(config)).get(id);
    const token = (await session?.getAccessToken()) ?? '';
    const response = await session?.fetch(`${config.issuer}/me`);
    return { token, api: response?.status };
  },
  /** Whether any DPoP key this origin keeps could be read out (it must not). */
  async keysExtractable(): Promise<{ keys: number; exported: number }> {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open('tokenkeeper-dpop');
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const pairs = await new Promise<CryptoKeyPair[]>((resolve, reject) => {
      const request = db.transaction('keys').objectStore('keys').getAll();
      request.onsuccess = () => resolve(request.result as CryptoKeyPair[]);
      request.onerror = () => reject(request.error);
    });
    db.close();
    let exported = 0;
    for (const pair of pairs) {
      for (const format of ['jwk', 'pkcs8'] as const) {
        await crypto.subtle.exportKey(format, pair.privateKey).then(
          () => exported++,
          () => {},
        );
      }
    }
    return { keys: pairs.length, exported };
  },
};

Object.assign(globalThis, { loginPage });
