import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { afterAll } from 'vitest';
import { keyvStore } from '../src/exports/keyv.js';
import { describeStoreConformance } from '../src/exports/testing.js';
import type { Store } from '../src/store/types.js';
import { REDIS_URL, runId } from './helpers/services.js';

const redisBackends: Keyv[] = [];
afterAll(async () => {
  for (const k of redisBackends) {
    await k.clear();
    await k.disconnect();
  }
});

const backendOf = new WeakMap<Store, Keyv>();
const make = (keyv: () => Keyv) => () => {
  const k = keyv();
  const store = keyvStore(k);
  backendOf.set(store, k);
  return store;
};
// A value another program wrote through the same Keyv.
const corrupt = async (store: Store, key: string) => {
  await backendOf.get(store)?.set(key, { written: 'by another program' });
};

describeStoreConformance(
  'keyvStore (in-memory Map)',
  make(() => new Keyv({ namespace: runId() })),
  { corrupt },
);
describeStoreConformance(
  'keyvStore (@keyv/redis)',
  make(() => {
    const k = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: runId() });
    redisBackends.push(k);
    return k;
  }),
  { listCount: 300, corrupt },
);
