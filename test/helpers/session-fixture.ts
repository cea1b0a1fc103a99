import { afterAll, beforeAll, beforeEach } from 'vitest';
import { memoryStore, type SessionManagerOptions, type Store } from '../../src/index.js';
import { type FakeAuthServer, startFakeAuthServer } from './fake-as.js';

/**
 * One strict fake authorization server for a test file, reset before each test, and a fresh
 * memory store per test; `options()` builds manager options pointing at both.
 */
export function useFakeAuthServer() {
  let server: FakeAuthServer | undefined;
  let store: Store = memoryStore();
  beforeAll(async () => {
    server = await startFakeAuthServer();
  });
  afterAll(() => server?.close());
  beforeEach(() => {
    const s = server as FakeAuthServer;
    s.resetCounts();
    s.latencyMs = 0;
    s.accessTokenTtl = 3600;
    s.refreshGraceMs = 0;
    s.dropRate = 0;
    s.failNext(0);
    s.quirks = {};
    s.revocationRequests.length = 0;
    store = memoryStore();
  });
  return {
    get as(): FakeAuthServer {
      return server as FakeAuthServer;
    },
    get store(): Store {
      return store;
    },
    options(extra: Partial<SessionManagerOptions> = {}): SessionManagerOptions {
      const s = server as FakeAuthServer;
      return {
        store,
        tokenEndpoint: s.tokenEndpoint,
        revocationEndpoint: s.revocationEndpoint,
        client: { clientId: s.clientId, clientSecret: s.clientSecret },
        retry: { baseDelayMs: 5, maxDelayMs: 20 },
        ...extra,
      };
    },
  };
}
