import { inspect } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { memoryStore, SessionManager, type Store, type TokenEndpointError } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import { type FakeAuthServer, unusedPort } from '../helpers/fake-as.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

const fixture = useFakeAuthServer();
let as: FakeAuthServer;
let store: Store;
beforeEach(() => {
  as = fixture.as;
  store = fixture.store;
});
const options = fixture.options;

/** A store that counts reads, to check the hot path never touches it. */
function counting(inner: Store) {
  const counts = { get: 0, lock: 0 };
  const wrapped: Store = {
    ...inner,
    name: inner.name,
    capabilities: inner.capabilities,
    get: (k) => {
      counts.get++;
      return inner.get(k);
    },
    set: (k, v, o) => inner.set(k, v, o),
    delete: (k, o) => inner.delete(k, o),
    keys: (p) => inner.keys(p),
    lock: (k, o) => {
      counts.lock++;
      return inner.lock(k, o);
    },
    close: () => inner.close(),
  };
  return { store: wrapped, counts };
}

describe('getAccessToken', () => {
  it('serves a fresh token from memory without touching the store', async () => {
    const c = counting(store);
    const manager = new SessionManager(options({ store: c.store }));
    const session = await manager.adopt('u', as.issue());
    const before = { ...c.counts };
    for (let i = 0; i < 100; i++) await session.getAccessToken();
    expect(c.counts).toEqual(before);
    expect(as.counts.refresh).toBe(0);
  });

  it('refreshes an expired token once, persisting the rotated refresh token', async () => {
    const manager = new SessionManager(options());
    const first = as.issue({ expiresIn: 0 });
    const session = await manager.adopt('u', first);
    const events: unknown[] = [];
    manager.on('refresh', (e) => events.push(e));
    const token = await session.getAccessToken();
    expect(token).not.toBe(first.access_token);
    expect(as.isActive(token)).toBe(true);
    expect(as.counts.refresh).toBe(1);
    const stored = await manager.get('u');
    expect(stored?.tokens.refreshToken).not.toBe(first.refresh_token);
    expect(stored?.tokens.refreshToken).toBe(session.tokens.refreshToken);
    expect(events).toHaveLength(1);
    expect(JSON.stringify(events)).not.toContain(token);
  });

  it('reports how long each renewal waited for the lock and for the server', async () => {
    const manager = new SessionManager(options());
    const events: { lockWaitMs?: number; serverMs?: number }[] = [];
    manager.on('refresh', (e) => events.push(e));
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    const lease = await store.lock('tokenkeeper:s:u');
    setTimeout(() => void lease.release(), 150);
    as.latencyMs = 100;
    await session.getAccessToken();
    expect(events).toHaveLength(1);
    expect(events[0]?.lockWaitMs).toBeGreaterThanOrEqual(100);
    expect(events[0]?.serverMs).toBeGreaterThanOrEqual(90);
    expect(JSON.stringify(events)).not.toContain(session.tokens.accessToken);
  });

  it('renews ahead of expiry by refreshSkewMs, in the background: callers get the valid token at once', async () => {
    const manager = new SessionManager(options({ refreshSkewMs: 120_000 }));
    const session = await manager.adopt('u', as.issue({ expiresIn: 60 }));
    const old = session.tokens.accessToken;
    as.latencyMs = 200;
    const started = Date.now();
    const tokens = await Promise.all(Array.from({ length: 50 }, () => session.getAccessToken()));
    expect(Date.now() - started).toBeLessThan(150); // nobody waited for the server
    expect(new Set(tokens)).toEqual(new Set([old]));
    for (let i = 0; i < 300 && as.counts.refresh === 0; i++) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 300 && session.tokens.accessToken === old; i++) await new Promise((r) => setTimeout(r, 10));
    expect(as.counts.refresh).toBe(1); // one renewal for all 50 callers
    expect(await session.getAccessToken()).not.toBe(old);
  });

  it('a failed background renewal is an error event; callers keep their valid token until it is unusable', async () => {
    const manager = new SessionManager(options({ refreshSkewMs: 120_000 }));
    const errors: unknown[] = [];
    manager.on('error', ({ error }) => errors.push(error));
    const session = await manager.adopt('u', as.issue({ expiresIn: 60 }));
    as.failNext(10, 500);
    expect(as.isActive(await session.getAccessToken())).toBe(true);
    for (let i = 0; i < 300 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((errors[0] as { code?: string }).code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(as.isActive(await session.getAccessToken())).toBe(true);
    as.failNext(0);
  });

  it('makes one refresh for 200 concurrent callers in one process', async () => {
    const manager = new SessionManager(options());
    as.latencyMs = 50;
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    const tokens = await Promise.all(Array.from({ length: 200 }, () => session.getAccessToken()));
    expect(as.counts.refresh).toBe(1);
    expect(as.counts.invalidGrant).toBe(0);
    expect(new Set(tokens).size).toBe(1);
    expect(as.isActive(tokens[0] as string)).toBe(true);
  });

  it('makes one refresh for 8 managers x 200 callers sharing one memory store', async () => {
    as.latencyMs = 30;
    const seed = new SessionManager(options());
    await seed.adopt('shared', as.issue({ expiresIn: 0 }));
    const managers = Array.from({ length: 8 }, () => new SessionManager(options()));
    const sessions = await Promise.all(managers.map((m) => m.get('shared')));
    const tokens = await Promise.all(
      sessions.flatMap((s) => Array.from({ length: 200 }, () => s?.getAccessToken() as Promise<string>)),
    );
    expect(as.counts.refresh).toBe(1);
    expect(as.counts.invalidGrant).toBe(0);
    expect(new Set(tokens).size).toBe(1);
  });

  it('adopts a token another manager stored instead of refreshing again', async () => {
    const a = new SessionManager(options());
    const b = new SessionManager(options());
    await a.adopt('u', as.issue({ expiresIn: 0 }));
    const sa = await a.get('u');
    const sb = await b.get('u');
    const ta = await sa?.getAccessToken();
    const tb = await sb?.getAccessToken();
    expect(tb).toBe(ta);
    expect(as.counts.refresh).toBe(1);
  });

  it('renews a client-credentials session by the same grant', async () => {
    as.accessTokenTtl = 1;
    const manager = new SessionManager(options({ refreshSkewMs: 0 }));
    const session = await manager.login({ grant: 'client_credentials', scope: 'read' }, { sessionId: 'svc' });
    const first = await session.getAccessToken();
    await new Promise((r) => setTimeout(r, 1100));
    const tokens = await Promise.all(Array.from({ length: 50 }, () => session.getAccessToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(first);
    expect(as.counts.clientCredentials).toBe(2);
    expect(session.tokens.scope).toBe('read');
  });

  it('marks the session reauth-required on invalid_grant, emits, keeps the record, and does not retry', async () => {
    const manager = new SessionManager(options());
    const response = as.issue({ expiresIn: 0 });
    const session = await manager.adopt('u', response);
    // Someone else used this refresh token: the next use is a replay.
    await new SessionManager(options({ store: memoryStore() })).login({
      grant: 'refresh_token',
      refreshToken: response.refresh_token as string,
    });
    as.resetCounts();
    const events: { sessionId: string; error: Error }[] = [];
    manager.on('reauth-required', (e) => events.push(e));
    const err = await rejection(session.getAccessToken());
    expect(err.code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
    expect(err.message).toContain('invalid_grant');
    expect(inspect(err, { depth: 10 })).not.toContain(response.refresh_token);
    expect(events.map((e) => e.sessionId)).toEqual(['u']);
    expect(session.status).toBe('reauth-required');
    const stored = await manager.get('u');
    expect(stored?.status).toBe('reauth-required');
    expect(stored?.tokens.refreshToken).toBe(response.refresh_token);
    expect((await rejection(session.getAccessToken())).code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
    expect(as.counts.refresh).toBe(1);
    // A new login under the same id recovers.
    await manager.adopt('u', as.issue());
    expect(as.isActive(await session.getAccessToken())).toBe(true);
  });

  it('needs a new login when an expired session has no refresh token', async () => {
    const manager = new SessionManager(options());
    const session = await manager.adopt('u', { access_token: 'at-x', token_type: 'bearer', expires_in: 0 });
    expect((await rejection(session.getAccessToken())).code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
    expect(as.counts.refresh).toBe(0);
  });

  it('retries 5xx with back-off, then succeeds', async () => {
    const manager = new SessionManager(options());
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    as.failNext(2, 503);
    expect(as.isActive(await session.getAccessToken())).toBe(true);
    expect(as.counts.failed).toBe(2);
    expect(as.counts.refresh).toBe(1);
  });

  it('gives a typed error after bounded retries of 503, leaving the stored session untouched', async () => {
    const manager = new SessionManager(options({ retry: { attempts: 3, baseDelayMs: 5 } }));
    const response = as.issue({ expiresIn: 0 });
    const session = await manager.adopt('u', response);
    as.failNext(10, 503);
    const err = await rejection(session.getAccessToken());
    expect(err.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(err.message).toContain('HTTP 503 after 3 tries');
    expect(as.counts.failed).toBe(3);
    expect((await manager.get('u'))?.tokens.refreshToken).toBe(response.refresh_token);
    expect(session.status).toBe('active');
    as.failNext(0);
    expect(as.isActive(await session.getAccessToken())).toBe(true);
  });

  it('never sends a refresh again after a 500, 502 or 504: the server may have rotated the token', async () => {
    for (const status of [500, 502, 504]) {
      const manager = new SessionManager(options({ retry: { attempts: 3, baseDelayMs: 5 } }));
      const response = as.issue({ expiresIn: 0 });
      const session = await manager.adopt(`u${status}`, response);
      as.resetCounts();
      as.failNext(10, status);
      const err = await rejection(session.getAccessToken());
      expect(err.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
      expect(err.message).toContain(`HTTP ${status} after 1 try; not retried`);
      expect((err as TokenEndpointError).outcomeUnknown).toBe(true);
      expect(as.counts.failed).toBe(1);
      // The stored tokens are kept, marked as possibly spent; the next call tries them once more.
      expect((await manager.get(`u${status}`))?.tokens.refreshToken).toBe(response.refresh_token);
      as.failNext(0);
      expect(as.isActive(await session.getAccessToken())).toBe(true);
    }
  });

  it('gives a typed error quickly when the server is unreachable', async () => {
    const manager = new SessionManager(options({ tokenEndpoint: `http://127.0.0.1:${await unusedPort()}/token` }));
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    const err = await rejection(session.getAccessToken());
    expect(err.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('does not retry a refresh that timed out, since the server may have rotated the token', async () => {
    as.latencyMs = 400;
    const manager = new SessionManager(options({ retry: { attempts: 3, timeoutMs: 100 } }));
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    const err = await rejection(session.getAccessToken());
    expect(err.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(err.message).toContain('not retried');
    await new Promise((r) => setTimeout(r, 500));
    expect(as.counts.refresh).toBe(1);
  });

  it('times out on the store lock with a typed error naming the key', async () => {
    const manager = new SessionManager(options({ lock: { waitMs: 100 } }));
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    const lease = await store.lock('tokenkeeper:s:u');
    const err = await rejection(session.getAccessToken());
    expect(err.code).toBe('TOKENKEEPER_LOCK_TIMEOUT');
    expect(err.message).toContain('tokenkeeper:s:u');
    await lease.release();
  });
});

describe('fetch', () => {
  it('adds the Authorization header', async () => {
    const manager = new SessionManager(options());
    const session = await manager.adopt('u', as.issue());
    const res = await session.fetch(as.apiUrl, { method: 'POST', body: 'hello' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, method: 'POST', body: 'hello' });
  });

  it('refreshes once on 401 and retries once, replaying the body', async () => {
    const manager = new SessionManager(options());
    const session = await manager.adopt('u', as.issue());
    // The server revokes the access token behind our back.
    await fetch(as.revocationEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: session.tokens.accessToken,
        client_id: as.clientId,
        client_secret: as.clientSecret,
      }),
    });
    const res = await session.fetch(as.apiUrl, { method: 'PUT', body: 'again' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, method: 'PUT', body: 'again' });
    expect(as.counts.refresh).toBe(1);
    expect(as.counts.api).toBe(2);
  });

  it('returns the second 401 rather than looping', async () => {
    let apiCalls = 0;
    const manager = new SessionManager(
      options({
        fetch: async (input, init) => {
          if (String(input instanceof Request ? input.url : input).endsWith('/always-401')) {
            apiCalls++;
            return new Response('no', { status: 401 });
          }
          return fetch(input, init);
        },
      }),
    );
    const session = await manager.adopt('u', as.issue());
    const res = await session.fetch(`${as.issuer}/always-401`);
    expect(res.status).toBe(401);
    expect(apiCalls).toBe(2);
    expect(as.counts.refresh).toBe(1);
  });
});

describe('logout, list, clear', () => {
  it('revokes at the server, deletes the session and emits logout', async () => {
    const manager = new SessionManager(options());
    const session = await manager.adopt('u', as.issue());
    const token = await session.getAccessToken();
    const events: unknown[] = [];
    manager.on('logout', (e) => events.push(e));
    expect(await session.logout()).toEqual({ revoked: true, refreshToken: 'revoked', accessToken: 'revoked' });
    expect(as.isActive(token)).toBe(false);
    expect(await manager.get('u')).toBeUndefined();
    expect(events).toEqual([{ sessionId: 'u', revoked: true }]);
    expect((await rejection(session.getAccessToken({ forceRefresh: true }))).code).toBe('TOKENKEEPER_NO_SESSION');
  });

  it('still deletes when revocation fails, reporting it', async () => {
    const manager = new SessionManager(
      options({ revocationEndpoint: `http://127.0.0.1:${await unusedPort()}/revoke`, retry: { attempts: 1 } }),
    );
    const session = await manager.adopt('u', as.issue());
    const errors: unknown[] = [];
    manager.on('error', (e) => errors.push(e));
    // One failure to reach the server: the access token is not tried again (a second wait for nothing).
    expect(await session.logout()).toEqual({ revoked: false, refreshToken: 'failed', accessToken: 'failed' });
    expect(errors).toHaveLength(1);
    expect(await manager.get('u')).toBeUndefined();
  });

  it('lists and clears many sessions, leaving other namespaces alone', async () => {
    const manager = new SessionManager(options({ namespace: 'mine' }));
    const other = new SessionManager(options({ namespace: 'other' }));
    await other.adopt('keep', as.issue());
    for (let i = 0; i < 1200; i++) await manager.adopt(`user-${i}`, { access_token: `at-${i}`, token_type: 'bearer' });
    let n = 0;
    for await (const _ of manager.sessionIds()) n++;
    expect(n).toBe(1200);
    expect(await manager.clear()).toBe(1200);
    for await (const _ of manager.sessionIds()) throw new Error('not cleared');
    expect(await other.get('keep')).toBeDefined();
  });

  it('clears with revocation when asked', async () => {
    const manager = new SessionManager(options());
    const s1 = await manager.adopt('a', as.issue());
    const s2 = await manager.adopt('b', as.issue());
    const t = [await s1.getAccessToken(), await s2.getAccessToken()];
    expect(await manager.clear({ revoke: true })).toBe(2);
    expect(t.map((x) => as.isActive(x))).toEqual([false, false]);
  });
});

describe('secrets', () => {
  it('never shows a token in inspect or JSON of a session', async () => {
    const manager = new SessionManager(options());
    const response = as.issue();
    const session = await manager.adopt('u', response);
    for (const view of [
      inspect(session, { depth: 10 }),
      JSON.stringify(session),
      String(session),
      inspect(manager, { depth: 3 }),
    ]) {
      expect(view).not.toContain(response.access_token);
      expect(view).not.toContain(response.refresh_token);
      expect(view).not.toContain(as.clientSecret);
    }
  });

  it('encrypts session records when given encryption keys', async () => {
    const manager = new SessionManager(
      options({ encryption: { keys: { k1: new Uint8Array(32).fill(3) }, current: 'k1' } }),
    );
    const response = as.issue({ expiresIn: 0 });
    await manager.adopt('u', response);
    const raw = JSON.stringify((await store.get('tokenkeeper:s:u'))?.value);
    expect(raw).not.toContain(response.refresh_token);
    expect(raw).toContain('A256GCM');
    const session = await manager.get('u');
    expect(as.isActive((await session?.getAccessToken()) as string)).toBe(true);
  });

  it('reports a hand-edited session record as corrupt, naming it, while others work', async () => {
    const manager = new SessionManager(options());
    await manager.adopt('good', as.issue());
    await store.set('tokenkeeper:s:bad', { garbage: true });
    const err = await rejection(manager.get('bad'));
    expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(err.key).toBe('tokenkeeper:s:bad');
    expect(await manager.get('good')).toBeDefined();
  });
});
