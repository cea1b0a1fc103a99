import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisStore } from '../src/exports/redis.js';
import { describeStoreConformance } from '../src/exports/testing.js';
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

describeStoreConformance('redisStore (shared client)', () => redisStore({ client, prefix: prefix() }));
describeStoreConformance('redisStore (url)', () => redisStore({ url: REDIS_URL, prefix: prefix() }), {
  listCount: 500,
});
