import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisStore } from '../src/exports/redis.js';
import { lockOfKilledHolderFrees } from './helpers/dead-holder.js';
import { rejection } from './helpers/errors.js';
import { unusedPort } from './helpers/fake-as.js';
import { startPrivateRedis } from './helpers/private-redis.js';
import { deleteRedisPrefixes, REDIS_URL, runId } from './helpers/services.js';

const admin = new Redis(REDIS_URL);
afterAll(async () => {
  await admin.quit();
});

describe('redisStore faults', () => {
  it('fails with a typed error while Redis is down, and works again with the same store when it is back', async () => {
    const server = await startPrivateRedis('aof');
    const store = redisStore({ url: server.url, prefix: 'restart:' });
    try {
      for (let i = 0; i < 20; i++) await store.set(`k${i}`, { i });
      await server.stop();
      const started = Date.now();
      const err = await rejection(store.get('k1'));
      expect(err.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
      expect(err.message).toContain(server.url.slice('redis://'.length));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await rejection(store.set('k1', { i: -1 }))).code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');

      await server.start();
      let back = false;
      for (let i = 0; i < 50 && !back; i++) {
        back = await store.get('k0').then(
          () => true,
          () => false,
        );
        if (!back) await new Promise((r) => setTimeout(r, 100));
      }
      expect(back).toBe(true);
      for (let i = 0; i < 20; i++) expect((await store.get(`k${i}`))?.value).toEqual({ i }); // nothing lost
      expect(await store.set('k20', { i: 20 })).toBe(1);
    } finally {
      await store.close();
      await server.stop();
    }
  }, 30_000);

  it('recovers by itself after CLIENT KILL of its connection, losing no record', async () => {
    const prefix = `${runId()}:`;
    const store = redisStore({ url: REDIS_URL, prefix, redis: { connectionName: prefix.slice(0, -1) } });
    for (let i = 0; i < 10; i++) await store.set(`k${i}`, { i });
    const list = (await admin.client('LIST')) as string;
    const ids = list
      .split('\n')
      .filter((l) => l.includes(`name=${prefix.slice(0, -1)}`))
      .map((l) => /id=(\d+)/.exec(l)?.[1]);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) await admin.client('KILL', 'ID', id as string);
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await store.get('k3').then(
        (e) => e?.value.i === 3,
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ok).toBe(true);
    for (let i = 0; i < 10; i++) expect((await store.get(`k${i}`))?.value).toEqual({ i });
    await store.close();
    await deleteRedisPrefixes([prefix]);
  }, 30_000);

  it('frees the lock of a process killed while holding it when its lease ends', async () => {
    const prefix = `${runId()}:`;
    const store = redisStore({ url: REDIS_URL, prefix });
    const waited = await lockOfKilledHolderFrees(store, { kind: 'redis', url: REDIS_URL, prefix }, 1_500);
    expect(waited).toBeGreaterThan(500); // Redis frees it by lease, not at once
    await store.close();
  }, 30_000);

  it('reports a Redis value of another type, or one it did not write, without overwriting it', async () => {
    const prefix = `${runId()}:`;
    const store = redisStore({ client: admin, prefix });
    await admin.hset(`${prefix}{hash}:r`, 'f', 'v');
    for (const op of [store.get('hash'), store.set('hash', { a: 1 })]) {
      const err = await rejection(op);
      expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
      expect(err.message).toContain('another type');
    }
    expect(await admin.type(`${prefix}{hash}:r`)).toBe('hash');
    await admin.set(`${prefix}{foreign}:r`, 'not json');
    expect((await rejection(store.get('foreign'))).code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect((await rejection(store.set('foreign', { a: 1 }))).message).toContain('did not write');
    expect(await admin.get(`${prefix}{foreign}:r`)).toBe('not json');
    await store.set('fine', { ok: true });
    expect((await store.get('fine'))?.value).toEqual({ ok: true });
    // A version cannot be compared with what is not a record; the documented repair is a
    // delete (with or without force): it removes what is there, and the key works again.
    expect((await rejection(store.delete('hash', { ifVersion: 1 }))).code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    for (const [key, force] of [
      ['hash', false],
      ['foreign', true],
    ] as const) {
      expect(await store.delete(key, { force })).toBe(true);
      await store.set(key, { repaired: true });
      expect((await store.get(key))?.value).toEqual({ repaired: true });
    }
    await admin.del(`${prefix}{hash}:r`, `${prefix}{foreign}:r`, `${prefix}{fine}:r`);
  });

  it('warns once, through onWarning, when the server keeps no data across a restart', async () => {
    for (const persistence of ['none', 'aof'] as const) {
      const server = await startPrivateRedis(persistence);
      const warnings: { code: string; message: string }[] = [];
      const store = redisStore({ url: server.url, onWarning: (w) => warnings.push(w) });
      await store.set('a', { n: 1 });
      await store.get('a');
      await new Promise((r) => setTimeout(r, 100));
      if (persistence === 'none') {
        expect(warnings).toHaveLength(1);
        expect(warnings[0]?.code).toBe('TOKENKEEPER_REDIS_NOT_PERSISTENT');
        expect(warnings[0]?.message).toContain('appendonly yes');
      } else {
        expect(warnings).toEqual([]);
      }
      await store.close();
      await server.stop();
    }
  });

  it('500 operations waiting for the connection at start-up add one listener, not 500', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const prefix = `${runId()}:`;
    const store = redisStore({ url: REDIS_URL, prefix, onWarning: () => {} });
    await Promise.all(Array.from({ length: 500 }, (_, i) => store.set(`k${i}`, { i })));
    await new Promise((r) => setTimeout(r, 50));
    process.off('warning', onWarning);
    expect(warnings).not.toContain('MaxListenersExceededWarning');
    expect((await store.get('k499'))?.value).toEqual({ i: 499 });
    await store.close();
    await deleteRedisPrefixes([prefix]);
  });

  it('gives a clear error within a bounded time when Redis is unreachable (connectWaitMs, default 10 s)', async () => {
    const store = redisStore({ url: `redis://127.0.0.1:${await unusedPort()}`, connectWaitMs: 1_000 });
    const started = Date.now();
    const err = await rejection(store.get('k'));
    expect(err.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(5_000);
    await store.close();
  });

  it('refuses a connectWaitMs that is not a non-negative number of milliseconds', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5']) {
      expect(() => redisStore({ url: REDIS_URL, connectWaitMs: bad as number })).toThrow(
        /redisStore\(\{ connectWaitMs \}\) must be a non-negative number of milliseconds/,
      );
    }
  });

  it('refuses bad options', () => {
    for (const bad of [undefined, {}, { url: 'http://x' }, { url: REDIS_URL, prefix: 5 }]) {
      expect(() => redisStore(bad as never)).toThrow(/redisStore/);
    }
  });
});
