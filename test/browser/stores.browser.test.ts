import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callPage, launchChromium, openTab, type PageServer, startPageServer } from '../helpers/browser.js';

interface TestResult {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}
type Outcome = {
  ok: boolean;
  value?: unknown;
  name?: string;
  code?: string;
  key?: string;
  message?: string;
  typed?: boolean;
};

let server: PageServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  server = await startPageServer();
  browser = await launchChromium();
  context = await browser.newContext();
  page = await openTab(context, server.origin);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

function conformance(which: string, listCount?: number): Promise<TestResult[]> {
  return callPage(page, 'storesPage', 'conformance', which, listCount);
}

function failures(results: TestResult[]): string {
  return results
    .filter((r) => !r.ok)
    .map((r) => `${r.name}\n${r.error}`)
    .join('\n\n');
}

describe('store conformance in Chromium', () => {
  it('the page runner reports a failing test as failed', async () => {
    const results = await callPage<TestResult[]>(page, 'storesPage', 'selfTest');
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['passes', true],
      ['fails', false],
    ]);
    expect(results[1]?.error).toContain('expected {"a":1} to equal {"a":2}');
  });

  for (const which of [
    'indexeddb',
    'indexeddb, no Web Locks',
    'indexeddb, encrypted with a non-extractable key',
    'localStorage',
    'localStorage, no Web Locks',
    'sessionStorage',
  ]) {
    it(`${which}: passes every conformance test`, async () => {
      const results = await conformance(which);
      expect(failures(results)).toBe('');
      expect(results.length).toBe(53);
    }, 240_000);
  }
});

describe('bad input in the browser', () => {
  it('a localStorage entry edited into garbage is a typed error naming the key; other sessions read fine', async () => {
    const r = await callPage<Record<string, Outcome>>(page, 'storesPage', 'garbageEntry');
    expect(r.read).toMatchObject({ ok: false, code: 'TOKENKEEPER_CORRUPT_RECORD', key: 'alice', typed: true });
    expect(r.read?.message).toContain('alice');
    expect(r.readOther).toMatchObject({ ok: false, code: 'TOKENKEEPER_CORRUPT_RECORD', key: 'carol' });
    expect(r.bob).toMatchObject({ ok: true, value: { value: { who: 'bob' } } });
    expect(r.listed).toEqual({ ok: true, value: ['alice', 'bob', 'carol'] });
    expect(r.overwrite).toMatchObject({ ok: false, code: 'TOKENKEEPER_CORRUPT_RECORD' }); // never written over
    expect(r.removed).toMatchObject({ ok: true, value: true }); // deleting the key recovers it
    expect(r.after).toMatchObject({ ok: true, value: { value: { who: 'alice again' } } });
  });

  it('a full localStorage (QuotaExceededError) is TOKENKEEPER_STORE_FULL and keeps what was stored', async () => {
    const r = await callPage<Record<string, Outcome> & { filled: number }>(page, 'storesPage', 'quota');
    expect(r.filled).toBeGreaterThan(5); // really filled
    expect(r.write).toMatchObject({ ok: false, code: 'TOKENKEEPER_STORE_FULL', key: 'alice', typed: true });
    expect(r.write?.message).toContain('nothing was written');
    expect(r.newKey).toMatchObject({ ok: false, code: 'TOKENKEEPER_STORE_FULL', key: 'dave' });
    expect(r.alice).toMatchObject({ ok: true, value: { value: { who: 'alice', n: 1 } } });
    expect(r.bob).toMatchObject({ ok: true, value: { value: { who: 'bob' } } });
    expect(r.retry?.ok).toBe(true); // once space is freed, writes work again
  });

  it('storage disabled (a sandboxed frame) is TOKENKEEPER_STORE_UNAVAILABLE from every store', async () => {
    const tab = await openTab(context, server.origin, '/sandboxed.html');
    try {
      const frame = tab.frame({ name: 'blocked' });
      expect(frame).not.toBeNull();
      await frame?.waitForFunction(() => 'storesPage' in globalThis);
      const r = await callPage<Record<string, Outcome>>(frame as Frame, 'storesPage', 'disabled');
      for (const which of ['localStorageStore', 'indexedDbStore', 'encryptionKey']) {
        expect(r[which], which).toMatchObject({ ok: false, code: 'TOKENKEEPER_STORE_UNAVAILABLE', typed: true });
        expect(r[which]?.message, which).toMatch(/disabled|cannot be used/);
      }
      // The main page, same origin, is unaffected.
      const results = await conformance('indexeddb', 50);
      expect(failures(results)).toBe('');
    } finally {
      await tab.close();
    }
  });
});
