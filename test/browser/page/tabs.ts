/**
 * Page side of test/browser/tabs.browser.test.ts: each tab loads the shipped browser build
 * (dist/browser/tokenkeeper.js) and drives a SessionManager the way an app would.
 */
import type * as Tokenkeeper from '../../../src/index.js';
import type { Session, SessionManager, Store } from '../../../src/index.js';

const BUILD = '/tokenkeeper.js'; // not bundled: the page imports the real build
let tk: typeof Tokenkeeper;
let manager: SessionManager;
let store: Store;
let reads = 0;
const events: { event: string; sessionId?: string; code?: string }[] = [];

export interface SetupOptions {
  store: 'indexeddb' | 'localStorage';
  name: string;
  webLocks?: boolean;
  tokenEndpoint: string;
  revocationEndpoint: string;
  encrypted?: boolean;
  /** The manager's lock lease (default 45 s). */
  leaseMs?: number;
  /** The time limit of one token request (default 10 s). */
  timeoutMs?: number;
}

async function setup(o: SetupOptions) {
  tk = (await import(/* @vite-ignore */ BUILD)) as typeof Tokenkeeper;
  const inner =
    o.store === 'indexeddb'
      ? tk.indexedDbStore({ name: o.name, webLocks: o.webLocks ?? true })
      : tk.webStorageStore(localStorage, { prefix: o.name, webLocks: o.webLocks ?? true });
  store = counting(inner);
  manager = new tk.SessionManager({
    store,
    tokenEndpoint: o.tokenEndpoint,
    revocationEndpoint: o.revocationEndpoint,
    client: { clientId: 'public-client' },
    retry: { baseDelayMs: 5, maxDelayMs: 20, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) },
    ...(o.leaseMs ? { lock: { leaseMs: o.leaseMs } } : {}),
    ...(o.encrypted ? { encryption: await tk.browserEncryptionKey({ database: `${o.name}-keys` }) } : {}),
  });
  for (const event of ['login', 'refresh', 'logout', 'reauth-required', 'error'] as const) {
    manager.on(event, (p: { sessionId?: string; error?: unknown }) =>
      events.push({ event, sessionId: p.sessionId, code: (p.error as { code?: string } | undefined)?.code }),
    );
  }
  return { crossProcessLock: store.capabilities.crossProcessLock };
}

/** Counts reads, to show idle tabs are served from memory. */
function counting(inner: Store): Store {
  return {
    name: inner.name,
    capabilities: inner.capabilities,
    get: (k) => {
      reads++;
      return inner.get(k);
    },
    set: (k, v, o) => inner.set(k, v, o),
    delete: (k, o) => inner.delete(k, o),
    keys: (p) => inner.keys(p),
    lock: (k, o) => inner.lock(k, o),
    close: () => inner.close(),
    ...(inner.watch ? { watch: (l: (key: string | undefined) => void) => inner.watch?.(l) ?? (() => {}) } : {}),
  };
}

async function adopt(sessionId: string, response: Record<string, unknown>) {
  await manager.adopt(sessionId, response);
}

/** Loads the session into this tab, as an app does on start. */
async function open(sessionId: string) {
  const session = await manager.get(sessionId);
  return session?.status;
}

async function outcome<T>(run: () => Promise<T>) {
  try {
    return { ok: true as const, value: await run() };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return { ok: false as const, code: e.code, message: e.message };
  }
}

/** Waits until `startAt` (ms since the epoch), then calls getAccessToken `calls` times at once. */
async function storm(sessionId: string, startAt: number, calls = 20) {
  const session = (await manager.get(sessionId)) as Session;
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  const results = await Promise.all(Array.from({ length: calls }, () => outcome(() => session.getAccessToken())));
  return results;
}

async function token(sessionId: string, forceRefresh = false) {
  return outcome(async () => {
    const session = await manager.get(sessionId);
    if (!session) throw Object.assign(new Error('no session'), { code: 'NO_SESSION_HERE' });
    return session.getAccessToken({ forceRefresh });
  });
}

/** Starts a forced refresh and does not wait for it (the tab is closed meanwhile). */
function startRefresh(sessionId: string) {
  void token(sessionId, true);
}

/** The token this tab holds in memory for a session it loaded earlier: no store access. */
function held(sessionId: string) {
  const session = kept.get(sessionId); // the Session object the app kept: reading it touches no store
  return { accessToken: session?.tokens.accessToken, status: session?.status };
}

const kept = new Map<string, Session>();
async function keep(sessionId: string) {
  const session = await manager.get(sessionId);
  if (session) kept.set(sessionId, session);
}

/** Calls getAccessToken on the kept Session n times; returns the tokens and the reads it took. */
async function callKept(sessionId: string, n: number) {
  const session = kept.get(sessionId) as Session;
  const before = reads;
  const results = [];
  for (let i = 0; i < n; i++) results.push(await outcome(() => session.getAccessToken()));
  return { results, reads: reads - before };
}

async function logout(sessionId: string) {
  return outcome(async () => (await manager.get(sessionId))?.logout());
}

async function stored(sessionId: string) {
  const entry = await store.get(`tokenkeeper:s:${sessionId}`);
  return entry?.value;
}

Object.assign(globalThis, {
  tabs: { setup, adopt, open, storm, token, startRefresh, keep, held, callKept, logout, stored, events: () => events },
});

/** The stored encryption key: is it extractable, and what does exporting it throw? */
async function keyCheck(database: string) {
  const options = await tk.browserEncryptionKey({ database });
  const key = options.keys[options.current] as CryptoKey;
  const exported = await crypto.subtle.exportKey('raw', key).then(
    () => 'exported',
    (error: Error) => error.name,
  );
  return { extractable: key.extractable, type: key.type, exported, ids: Object.keys(options.keys) };
}

Object.assign((globalThis as unknown as { tabs: object }).tabs, { keyCheck });
