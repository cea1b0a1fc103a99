// No `TOKENKEEPER_LEASE_LOST` to callers while their deadline allows: a renewal whose lease ran
// out under it (a store answering slower than the lease, a paused process) sends nothing, waits
// for the holder that took the lock over, and hands out that holder's token. Only the call's own
// deadline ends in an error, and every session-level error names both the key and the session.
import { describe, expect, it } from 'vitest';
import { isTokenkeeperError, type Lease, memoryStore, SessionManager, type Store } from '../../src/index.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

const fx = useFakeAuthServer();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `inner`, reached through a slow link (a saturated connection pool, a paused process): each
 * read's answer arrives `delayMs` late, and each lease extension waits `delayMs` before it
 * reaches the store, so a lease can end meanwhile.
 */
function slowLink(inner: Store, delayMs: number): Store {
  return {
    name: `slow-link ${inner.name}`,
    capabilities: inner.capabilities,
    get: async (k) => {
      const entry = await inner.get(k);
      await sleep(delayMs);
      return entry;
    },
    set: (k, v, o) => inner.set(k, v, o),
    delete: (k, o) => inner.delete(k, o),
    keys: (p) => inner.keys(p),
    close: () => inner.close(),
    async lock(k, o): Promise<Lease> {
      const lease = await inner.lock(k, o);
      return {
        key: lease.key,
        predecessor: lease.predecessor,
        get expiresAt() {
          return lease.expiresAt;
        },
        release: () => lease.release(),
        extend: async (ms) => {
          await sleep(delayMs);
          return lease.extend(ms);
        },
      };
    },
  };
}

describe('a lease lost before the refresh was sent', () => {
  it('the caller still gets a token: the one the process that took the lock over renewed (one refresh)', async () => {
    const shared = memoryStore();
    const lock = { leaseMs: 200, waitMs: 10_000 };
    const a = new SessionManager(fx.options({ store: slowLink(shared, 300), lock }));
    const b = new SessionManager(fx.options({ store: shared, lock }));
    await b.adopt('u', fx.as.issue({ expiresIn: 0 }));
    fx.as.resetCounts();
    fx.as.latencyMs = 300;
    const [sa, sb] = await Promise.all([a.get('u'), b.get('u')]);
    // A takes the lock first; its read under the lock and its heartbeat are slower than the
    // lease, which B takes at 200 ms: A's confirmation fails, so A must send nothing, and wait
    // for B's renewal instead of failing.
    const first = sa?.getAccessToken() as Promise<string>;
    await sleep(20);
    const second = sb?.getAccessToken() as Promise<string>;
    const [ta, tb] = await Promise.all([first, second]);
    expect(ta).toBe(tb);
    expect(fx.as.isActive(ta)).toBe(true);
    expect(fx.as.counts.refresh).toBe(1);
    expect(fx.as.counts.reuseDetected).toBe(0);
    await shared.close();
  });

  it('only the deadline ends the wait, with a typed error naming the key and the session', async () => {
    const shared = memoryStore();
    const m = new SessionManager(fx.options({ store: shared, lock: { leaseMs: 5_000, waitMs: 300 } }));
    await m.adopt('held', fx.as.issue({ expiresIn: 0 }));
    const key = 'tokenkeeper:s:held';
    const other = await shared.lock(key, { leaseMs: 10_000 }); // another holder that never finishes
    const error = await (await m.get('held'))?.getAccessToken().catch((e: unknown) => e);
    expect(isTokenkeeperError(error, 'TOKENKEEPER_LOCK_TIMEOUT')).toBe(true);
    expect(error).toMatchObject({ key, sessionId: 'held' });
    expect(fx.as.counts.refresh).toBe(0);
    await other.release();
    await shared.close();
  });
});

describe('session-level errors name the key and the session', () => {
  it('manager.get(id) of a record that is not a session: TOKENKEEPER_CORRUPT_RECORD with key and sessionId', async () => {
    const store = memoryStore();
    const m = new SessionManager(fx.options({ store }));
    await store.set('tokenkeeper:s:junk', { not: 'a session' });
    const error = await m.get('junk').catch((e: unknown) => e);
    expect(isTokenkeeperError(error, 'TOKENKEEPER_CORRUPT_RECORD')).toBe(true);
    expect(error).toMatchObject({ key: 'tokenkeeper:s:junk', sessionId: 'junk' });
    expect((error as Error).message).toMatch(/not in the format tokenkeeper writes/);
    await store.close();
  });

  it('a renewal that finds the record corrupt under the lock: the error names the session too', async () => {
    const store = memoryStore();
    const m = new SessionManager(fx.options({ store }));
    const session = await m.adopt('gone-bad', fx.as.issue({ expiresIn: 0 }));
    await store.set('tokenkeeper:s:gone-bad', { not: 'a session' });
    const error = await session.getAccessToken().catch((e: unknown) => e);
    expect(isTokenkeeperError(error, 'TOKENKEEPER_CORRUPT_RECORD')).toBe(true);
    expect(error).toMatchObject({ key: 'tokenkeeper:s:gone-bad', sessionId: 'gone-bad' });
    await store.close();
  });

  it('maxConcurrentRenewals must be a positive whole number', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '4']) {
      expect(() => new SessionManager(fx.options({ maxConcurrentRenewals: bad as number }))).toThrow(
        /maxConcurrentRenewals must be a positive whole number/,
      );
    }
  });
});
