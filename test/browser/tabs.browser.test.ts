import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callPage, launchChromium, openTab, type PageServer, startPageServer } from '../helpers/browser.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';

type Outcome = { ok: boolean; value?: string; code?: string; message?: string };
type StoreKind = 'indexeddb' | 'localStorage';

let server: PageServer;
let as: FakeAuthServer;
let browser: Browser;
let context: BrowserContext;
let n = 0;

beforeAll(async () => {
  [server, as, browser] = await Promise.all([startPageServer(), startFakeAuthServer(), launchChromium()]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await Promise.all([server?.close(), as?.close()]);
});
beforeEach(async () => {
  as.resetCounts();
  as.latencyMs = 0;
  as.dropAbandoned = false;
  context = await browser.newContext();
});
afterEach(async () => {
  await context.close();
});

/** `count` tabs of one origin, each with a SessionManager on the same store. */
async function tabs(
  count: number,
  store: StoreKind,
  extra: { webLocks?: boolean; encrypted?: boolean; leaseMs?: number; timeoutMs?: number } = {},
) {
  const name = `tk${Date.now().toString(36)}${n++}`;
  const pages = await Promise.all(Array.from({ length: count }, () => openTab(context, server.origin)));
  const setup = { store, name, tokenEndpoint: as.tokenEndpoint, revocationEndpoint: as.revocationEndpoint, ...extra };
  const caps = [];
  for (const page of pages) caps.push(await callPage<{ crossProcessLock: boolean }>(page, 'tabs', 'setup', setup));
  return { pages, name, crossProcessLock: caps[0]?.crossProcessLock };
}

/** Stores a session whose access token is already stale (it expires within the refresh skew). */
async function expiredSession(page: Page, sessionId: string) {
  await callPage(page, 'tabs', 'adopt', sessionId, as.issue({ expiresIn: 5 }));
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('five tabs, one expired session, every tab asks at once', () => {
  for (const [store, extra] of [
    ['indexeddb', {}],
    ['localStorage', {}],
    ['indexeddb', { webLocks: false }],
  ] as [StoreKind, { webLocks?: boolean }][]) {
    const label = `${store}${extra.webLocks === false ? ' without Web Locks (IndexedDB lease)' : ' with Web Locks'}`;
    it(`${label}: exactly 1 refresh request, no tab signed out`, async () => {
      const { pages, crossProcessLock } = await tabs(5, store, extra);
      expect(crossProcessLock).toBe(true);
      await expiredSession(pages[0] as Page, 'alice');
      for (const page of pages) expect(await callPage(page, 'tabs', 'open', 'alice')).toBe('active');
      as.latencyMs = 100; // a slow server widens the window in which tabs could collide
      const startAt = Date.now() + 300;
      const results = (
        await Promise.all(pages.map((page) => callPage<Outcome[]>(page, 'tabs', 'storm', 'alice', startAt, 20)))
      ).flat();
      expect(results).toHaveLength(100);
      expect(results.filter((r) => !r.ok)).toEqual([]);
      expect(new Set(results.map((r) => r.value)).size).toBe(1);
      expect(as.counts.refresh).toBe(1);
      expect(as.counts.invalidGrant).toBe(0);
      expect(as.isActive(results[0]?.value as string)).toBe(true);
      const refreshed = [];
      for (const page of pages) {
        const events = await callPage<{ event: string }[]>(page, 'tabs', 'events');
        refreshed.push(events.filter((e) => e.event === 'refresh').length);
        expect(events.filter((e) => e.event === 'reauth-required' || e.event === 'error')).toEqual([]);
      }
      expect(refreshed.reduce((a, b) => a + b)).toBe(1);
    });
  }

  it('control: localStorage without Web Locks locks one tab only; only the renewal mark stands between two refreshes', async () => {
    const { pages, crossProcessLock } = await tabs(2, 'localStorage', { webLocks: false });
    expect(crossProcessLock).toBe(false); // what the store reports, and the docs (guide/browser.md) document
    await expiredSession(pages[0] as Page, 'bob');
    for (const page of pages) await callPage(page, 'tabs', 'open', 'bob');
    as.latencyMs = 300;
    const startAt = Date.now() + 200;
    const results = (
      await Promise.all(pages.map((page) => callPage<Outcome[]>(page, 'tabs', 'storm', 'bob', startAt, 1)))
    ).flat();
    // Without a cross-tab lock the second tab can still read the record before the first tab's
    // renewal mark reaches its copy of localStorage: then both refresh and the server revokes
    // the family (the hazard the lock exists for). When the mark arrives first, the second tab
    // waits for the first one's tokens. Either way nothing else happens.
    expect(as.counts.graceReuse).toBe(0); // this server has no reuse grace window
    if (as.counts.refresh === 2) {
      expect(as.counts.reuseDetected).toBe(1);
      // The family is revoked (a tab may already have handed out its token, valid until then).
      expect(results.some((r) => r.code === 'TOKENKEEPER_REAUTH_REQUIRED')).toBe(true);
      for (const r of results) if (!r.ok) expect(r.code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
    } else {
      expect(as.counts.refresh).toBe(1);
      expect(results.every((r) => r.ok)).toBe(true);
    }
  });
});

describe('a tab closed in the middle of its refresh', () => {
  it('frees the lock at once; another tab takes over and no session is lost', async () => {
    const { pages } = await tabs(3, 'indexeddb');
    const [a, b, c] = pages as [Page, Page, Page];
    await expiredSession(a, 'carol');
    as.latencyMs = 2_000;
    as.dropAbandoned = true; // the server had not acted on it when the tab went away
    await callPage(a, 'tabs', 'startRefresh', 'carol');
    await until(() => as.counts.received === 1, 'the refresh request of tab A to reach the server');
    await a.close(); // the request went out; the tab is gone before the answer
    as.latencyMs = 0;
    const started = Date.now();
    const taken = await callPage<Outcome>(b, 'tabs', 'token', 'carol');
    expect(taken).toMatchObject({ ok: true });
    expect(Date.now() - started).toBeLessThan(5_000); // not the 45 s lease: the browser freed the lock
    await until(() => as.counts.abandoned === 1, 'the server to drop the abandoned request');
    expect(as.counts.refresh).toBe(1); // B's; A's was never processed
    expect(as.counts.invalidGrant).toBe(0);
    expect(as.isActive(taken.value as string)).toBe(true);
    expect(await callPage(c, 'tabs', 'token', 'carol')).toEqual({ ok: true, value: taken.value });
    expect(as.counts.refresh).toBe(1);
  });

  it('without Web Locks, the next tab takes over when the lease of the closed tab ends', async () => {
    // Tab A's renewal mark makes tab B wait until A's request must have ended: the request time
    // limit (3 s here, above the server's 2 s) and a margin after B took the lock.
    const { pages } = await tabs(2, 'indexeddb', { webLocks: false, leaseMs: 1_500, timeoutMs: 3_000 });
    const [a, b] = pages as [Page, Page];
    await expiredSession(a, 'gina');
    as.latencyMs = 2_000;
    as.dropAbandoned = true;
    await callPage(a, 'tabs', 'startRefresh', 'gina');
    await until(() => as.counts.received === 1, 'the refresh request of tab A to reach the server');
    await a.close();
    as.latencyMs = 0;
    const started = Date.now();
    const taken = await callPage<Outcome>(b, 'tabs', 'token', 'gina');
    expect(taken).toMatchObject({ ok: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500); // it waited for the lease row to end
    await until(() => as.counts.abandoned === 1, 'the server to drop the abandoned request');
    expect(as.counts.refresh).toBe(1);
    expect(as.isActive(taken.value as string)).toBe(true);
  });

  it('if the server had already rotated the token, the session is marked reauth-required, not left broken', async () => {
    const { pages } = await tabs(2, 'indexeddb');
    const [a, b] = pages as [Page, Page];
    await expiredSession(a, 'hal');
    await callPage(a, 'tabs', 'adopt', 'ivy', as.issue({ expiresIn: 3600 }));
    as.latencyMs = 3_000; // dropAbandoned is false: the server rotates although nobody hears it
    await callPage(a, 'tabs', 'startRefresh', 'hal');
    await until(() => as.counts.received === 1, 'the refresh request of tab A to reach the server');
    await a.close();
    // Abandoned: tab A was gone before the answer, so it never stored the new tokens.
    await until(() => as.counts.abandoned === 1 && as.counts.refresh === 1, 'the server to rotate the token');
    as.latencyMs = 0;
    const r = await callPage<Outcome>(b, 'tabs', 'token', 'hal');
    expect(r).toMatchObject({ ok: false, code: 'TOKENKEEPER_REAUTH_REQUIRED' });
    expect(as.counts.reuseDetected).toBe(1); // no client can tell a lost answer from none: the server can
    const events = await callPage<{ event: string; sessionId: string }[]>(b, 'tabs', 'events');
    expect(events.filter((e) => e.event === 'reauth-required').map((e) => e.sessionId)).toEqual(['hal']);
    expect(await callPage(b, 'tabs', 'token', 'ivy')).toMatchObject({ ok: true }); // other sessions unaffected
  });
});

describe('idle tabs follow what another tab did', () => {
  for (const store of ['indexeddb', 'localStorage'] as StoreKind[]) {
    it(`${store}: a renewed token reaches an idle tab by signal; its calls then read no store`, async () => {
      const { pages } = await tabs(2, store);
      const [a, b] = pages as [Page, Page];
      await callPage(a, 'tabs', 'adopt', 'dave', as.issue({ expiresIn: 3600 }));
      await callPage(b, 'tabs', 'keep', 'dave');
      const before = await callPage<{ accessToken: string }>(b, 'tabs', 'held', 'dave');
      const renewed = await callPage<Outcome>(a, 'tabs', 'token', 'dave', true);
      expect(renewed.ok).toBe(true);
      expect(renewed.value).not.toBe(before.accessToken);
      await until(
        async () => (await callPage<{ accessToken: string }>(b, 'tabs', 'held', 'dave')).accessToken === renewed.value,
        'tab B to pick up the renewed token',
      );
      const calls = await callPage<{ results: Outcome[]; reads: number }>(b, 'tabs', 'callKept', 'dave', 50);
      expect(calls.reads).toBe(0);
      expect(new Set(calls.results.map((r) => r.value))).toEqual(new Set([renewed.value]));
      expect(as.counts.refresh).toBe(1);
    });

    it(`${store}: a logout in one tab signs the session out in the others`, async () => {
      const { pages } = await tabs(2, store);
      const [a, b] = pages as [Page, Page];
      await callPage(a, 'tabs', 'adopt', 'erin', as.issue({ expiresIn: 3600 }));
      await callPage(b, 'tabs', 'keep', 'erin');
      expect((await callPage<{ results: Outcome[] }>(b, 'tabs', 'callKept', 'erin', 1)).results[0]?.ok).toBe(true);
      await callPage(a, 'tabs', 'logout', 'erin');
      expect(as.counts.revocations).toBe(2); // the refresh token, then the access token
      await until(
        async () => (await callPage<{ event: string }[]>(b, 'tabs', 'events')).some((e) => e.event === 'logout'),
        'tab B to hear of the logout',
      );
      const after = await callPage<{ results: Outcome[] }>(b, 'tabs', 'callKept', 'erin', 1);
      expect(after.results[0]).toMatchObject({ ok: false, code: 'TOKENKEEPER_NO_SESSION' });
    });
  }
});

describe('encryption at rest in the browser', () => {
  it('keeps records encrypted under a non-extractable key that every tab shares', async () => {
    const { pages, name } = await tabs(2, 'indexeddb', { encrypted: true });
    const [a, b] = pages as [Page, Page];
    const issued = as.issue({ expiresIn: 3600 });
    await callPage(a, 'tabs', 'adopt', 'frank', issued);
    const stored = JSON.stringify(await callPage(a, 'tabs', 'stored', 'frank'));
    expect(stored).not.toContain(issued.access_token);
    expect(stored).not.toContain(issued.refresh_token as string);
    expect(stored).toContain('"alg":"A256GCM"');
    expect(await callPage(b, 'tabs', 'token', 'frank')).toEqual({ ok: true, value: issued.access_token });
    const key = await callPage<{ extractable: boolean; exported: string; ids: string[] }>(
      b,
      'tabs',
      'keyCheck',
      `${name}-keys`,
    );
    expect(key).toMatchObject({ extractable: false, exported: 'InvalidAccessError', ids: ['k1'] });
  });
});
