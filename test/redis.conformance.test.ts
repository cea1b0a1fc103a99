import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisStore } from '../src/exports/redis.js';
import { describeStoreConformance } from '../src/exports/testing.js';
import type { Store } from '../src/store/types.js';
import { deleteRedisPrefixes, REDIS_URL, runId } from './helpers/services.js';

// One shared client, as an application would have; each store gets its own key prefix, and
// the run deletes its keys at the end.
const client = new Redis(REDIS_URL);
const prefixes: string[] = [];
const prefix = () => {
  const p = `${runId()}:`;
  prefixes.push(p);
  return p;
};
afterAll(async () => {
  await client.quit();
  await deleteRedisPrefixes(prefixes);
});

const prefixOf = new WeakMap<Store, string>();
const make = (options: { client: Redis } | { url: string }) => () => {
  const p = prefix();
  const store = redisStore({ ...options, prefix: p });
  prefixOf.set(store, p);
  return store;
};
// A value another program wrote under the store's key.
const corrupt = async (store: Store, key: string) => {
  await client.set(`${prefixOf.get(store)}{${key}}:r`, 'written by another program');
};

describeStoreConformance('redisStore (shared client)', make({ client }), { corrupt });
describeStoreConformance('redisStore (url)', make({ url: REDIS_URL }), { listCount: 500, corrupt });
