import { describeStoreConformance } from '../src/exports/testing.js';
import { memoryStore } from '../src/index.js';

describeStoreConformance('memoryStore', () => memoryStore());
