import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteStore } from '../src/exports/sqlite.js';
import { describeStoreConformance } from '../src/exports/testing.js';

describeStoreConformance(
  'sqliteStore',
  () => sqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'tk-sqlite-')), 'db', 'tokens.db') }),
  {
    listCount: 1200,
  },
);
