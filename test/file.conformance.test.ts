import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileStore } from '../src/exports/file.js';
import { describeStoreConformance } from '../src/exports/testing.js';

describeStoreConformance(
  'fileStore',
  () => fileStore({ path: join(mkdtempSync(join(tmpdir(), 'tk-conf-')), 'store') }),
  {
    listCount: 1000,
  },
);
