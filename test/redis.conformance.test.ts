import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisStore } from '../src/redis.js';
import { describeStoreConformance } from '../src/testing.js';
import { REDIS_URL, runId } from './helpers/services.js';

// One shared client, as an application would have; each store gets its own key prefix.
const client = new Redis(REDIS_URL);
afterAll(async () => {
  await client.quit();
});

describeStoreConformance('redisStore (shared client)', () => redisStore({ client, prefix: `${runId()}:` }));
describeStoreConformance('redisStore (url)', () => redisStore({ url: REDIS_URL, prefix: `${runId()}:` }), {
  listCount: 500,
});
