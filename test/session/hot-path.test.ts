// The hot path reads no clock while a timer has not said the token needs renewal: these check
// that the timer does say it, on time, and that a new record is never served from the old bound.
import { describe, expect, it } from 'vitest';
import { SessionManager } from '../../src/index.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

const fx = useFakeAuthServer();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('getAccessToken() on a fresh token', () => {
  it('hands out a new token once the old one reaches its renewal point, however many calls came before', async () => {
    const manager = new SessionManager(fx.options({ refreshSkewMs: 1_000 }));
    // A 3 s token with a 1 s margin: renewed from 2 s; callers wait for the renewal from 2.5 s.
    const session = await manager.adopt('u', fx.as.issue({ expiresIn: 3 }));
    const first = await session.getAccessToken();
    for (let i = 0; i < 10; i++) expect(await session.getAccessToken()).toBe(first); // served from memory
    expect(fx.as.counts.refresh).toBe(0);
    await sleep(2_700);
    const second = await session.getAccessToken(); // the second call since the bound was set: no clock read
    expect(second).not.toBe(first);
    expect(fx.as.isActive(second)).toBe(true);
    expect(fx.as.counts.refresh).toBe(1);
  });

  it('a record written by another manager (another process) is served at once, not the old token', async () => {
    const a = new SessionManager(fx.options());
    const b = new SessionManager(fx.options({ store: fx.store }));
    const sa = await a.adopt('shared', fx.as.issue({ expiresIn: 3600 }));
    const old = await sa.getAccessToken();
    await (await b.get('shared'))?.getAccessToken({ forceRefresh: true });
    const fresh = await (await a.get('shared'))?.getAccessToken(); // manager.get reads the store
    expect(fresh).not.toBe(old);
    expect(await sa.getAccessToken()).toBe(fresh);
  });

  it('forceRefresh is never served from memory', async () => {
    const manager = new SessionManager(fx.options());
    const session = await manager.adopt('f', fx.as.issue({ expiresIn: 3600 }));
    const before = await session.getAccessToken();
    const after = await session.getAccessToken({ forceRefresh: true });
    expect(after).not.toBe(before);
    expect(fx.as.counts.refresh).toBe(1);
  });
});
