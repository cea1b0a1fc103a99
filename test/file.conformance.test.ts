import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileStore } from '../src/file.js';
import { describeStoreConformance } from '../src/testing.js';

describeStoreConformance(
  'fileStore',
  () => fileStore({ path: join(mkdtempSync(join(tmpdir(), 'tk-conf-')), 'store') }),
  {
    listCount: 1000,
  },
);
