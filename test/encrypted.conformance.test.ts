import { describeStoreConformance } from '../src/exports/testing.js';
import { encryptedStore, memoryStore } from '../src/index.js';

const key = new Uint8Array(32).fill(7);
describeStoreConformance(
  'encryptedStore(memoryStore)',
  () => encryptedStore(memoryStore(), { keys: { k1: key }, current: 'k1' }),
  {
    listCount: 500,
  },
);
