import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type PageServer, startPageServer } from '../helpers/browser.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';
import { offline, signIn } from '../helpers/sign-in.js';

// A DPoP-bound session in the browser build: the key is a non-extractable CryptoKey in
// IndexedDB, shared by every tab of the origin; five tabs on the expired session make one refresh.

const TABS = 5;
let op: RealAuthServer;
let pages: PageServer;
let browser: Browser;
let context: BrowserContext;

type LoginPage = Record<string, (...args: unknown[]) => Promise<unknown>>;
const call = <T>(page: Page, fn: string, ...args: unknown[]) =>
  page.evaluate(
    ([f, a]) => (globalThis as never as { loginPage: LoginPage }).loginPage[f as string]?.(...(a as unknown[])),
    [fn, args] as const,
  ) as Promise<T>;

beforeAll(async () => {
  pages = await startPageServer();
  op = await startRealAuthServer({ publicRedirectUris: [`${pages.origin}/spa.html`] });
  browser = await launchChromium();
  context = await browser.newContext();
  await offline(context);
}, 60_000);
afterAll(async () => {
  await context?.close();
  await browser?.close();
  await op?.close();
  await pages?.close();
});

async function openSpa(): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await page.goto(`${pages.origin}/spa.html`);
  await page.waitForFunction(() => 'loginPage' in globalThis);
  return page;
}

describe('DPoP in the browser (indexedDbStore, no encryption option)', () => {
  it(`logs in, then ${TABS} tabs on the expired session make one refresh; the key is never extractable`, async () => {
    const config = { issuer: op.issuer, clientId: op.dpopClientId, dpop: true };
    const first = await openSpa();
    const url = await call<string>(first, 'start', config);
    await signIn(first, url, () => first.url().startsWith(`${pages.origin}/spa.html?`));
    await first.waitForFunction(() => 'loginPage' in globalThis);
    const { id, type } = await call<{ id: string; type: string }>(first, 'complete', config);
    expect(id).toBe('alice');
    expect(type.toLowerCase()).toBe('dpop');

    // The record keeps the key's algorithm and thumbprint, and where it is: not the key.
    expect((await call<string[]>(first, 'expire', config, id)).sort()).toEqual(['alg', 'jkt', 'ref']);
    const tabs = [first, ...(await Promise.all(Array.from({ length: TABS - 1 }, openSpa)))];
    const refreshes = op.counts.refresh_token;
    const errors = op.counts.errors;
    const results = await Promise.all(tabs.map((tab) => call<{ token: string; api: number }>(tab, 'use', config, id)));
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    expect(results.map((r) => r.api)).toEqual(tabs.map(() => 200));
    expect(op.counts.refresh_token - refreshes).toBe(1);
    expect(op.counts.errors - errors).toBe(0);

    const keys = await call<{ keys: number; exported: number }>(first, 'keysExtractable');
    expect(keys.keys).toBeGreaterThanOrEqual(1);
    expect(keys.exported).toBe(0);
  }, 60_000);
});
