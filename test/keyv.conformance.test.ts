import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { afterAll } from 'vitest';
import { keyvStore } from '../src/exports/keyv.js';
import { describeStoreConformance } from '../src/exports/testing.js';
import { REDIS_URL, runId } from './helpers/services.js';

const redisBackends: Keyv[] = [];
afterAll(async () => {
  for (const k of redisBackends) {
    await k.clear();
    await k.disconnect();
  }
});

describeStoreConformance('keyvStore (in-memory Map)', () => keyvStore(new Keyv({ namespace: runId() })));
describeStoreConformance(
  'keyvStore (@keyv/redis)',
  () => {
    const k = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: runId() });
    redisBackends.push(k);
    return keyvStore(k);
  },
  { listCount: 300 },
);
