import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../src/exports/postgres.js';
import { redisStore } from '../src/exports/redis.js';
import { type PrivateRedis, startPrivateRedis } from './helpers/private-redis.js';

// close() settles within a bound during an outage, so an app's graceful shutdown (and the CLI)
// never hangs on a server that is gone.

let redis: PrivateRedis;
beforeAll(async () => {
  redis = await startPrivateRedis('none');
});
afterAll(async () => {
  await redis?.stop();
});

async function timed(work: Promise<unknown>): Promise<number> {
  const t0 = Date.now();
  await work;
  return Date.now() - t0;
}

describe('redisStore close() during an outage', () => {
  it('settles within 2 s with Redis gone (a subscriber listening too), and stops reconnecting', async () => {
    const store = redisStore({ url: redis.url, namespace: 'close_outage', onWarning: () => {} });
    await store.set('k', { a: 1 });
    const stop = store.watch?.(() => {}); // the subscriber connection
    const held = await store.lock('k', { leaseMs: 5_000 });
    const waiting = store.lock('k', { leaseMs: 5_000, waitMs: 20_000 }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    await redis.stop();
    await new Promise((r) => setTimeout(r, 300)); // the clients see the connection drop and start reconnecting
    expect(await timed(store.close())).toBeLessThan(2_000);
    stop?.();
    void held;
    await waiting;
    await redis.start();
    // Nothing of the store reconnects to the restarted server: no client of its name is left.
    await new Promise((r) => setTimeout(r, 2_500)); // longer than the reconnect backoff
    const { Redis } = await import('ioredis');
    const probe = new Redis(redis.url);
    const clients = String(await probe.client('LIST'))
      .trim()
      .split('\n');
    await probe.quit();
    expect(clients).toHaveLength(1); // the probe itself
  }, 30_000);

  it('on a store that never connected', async () => {
    const { unusedPort } = await import('./helpers/fake-as.js');
    const store = redisStore({ url: `redis://127.0.0.1:${await unusedPort()}` });
    await expect(store.get('k')).rejects.toMatchObject({ code: 'TOKENKEEPER_STORE_UNAVAILABLE' });
    expect(await timed(store.close())).toBeLessThan(500);
  }, 30_000);
});

describe('postgresStore close() during an outage', () => {
  it('settles within 3 s while a connection hangs on a server that accepted it and never answers', async () => {
    const sockets: Socket[] = [];
    const blackHole = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const port = (blackHole.address() as { port: number }).port;
    const store = postgresStore({ connectionString: `postgres://app@127.0.0.1:${port}/db` });
    const pending = store.get('k').catch((error: unknown) => error);
    await new Promise((r) => setTimeout(r, 200));
    expect(sockets.length).toBeGreaterThan(0);
    expect(await timed(store.close())).toBeLessThan(3_000);
    expect(await pending).toMatchObject({ code: 'TOKENKEEPER_STORE_UNAVAILABLE' });
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => blackHole.close(resolve));
  }, 30_000);
});
