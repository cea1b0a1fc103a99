import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileStore } from '../src/exports/file.js';
import { describeStoreConformance } from '../src/exports/testing.js';
import { encodeKey } from '../src/store/file/names.js';
import type { Store } from '../src/store/types.js';

const dirs = new WeakMap<Store, string>();

describeStoreConformance(
  'fileStore',
  () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tk-conf-')), 'store');
    const store = fileStore({ path: dir });
    dirs.set(store, dir);
    return store;
  },
  {
    listCount: 1000,
    // A record file cut short, as a crash of a program that writes in place would leave it.
    corrupt: async (store, key) => {
      await store.get('any'); // the store creates its folder on first use
      writeFileSync(join(dirs.get(store) as string, `${encodeKey(key)}.json`), '{"tokenkeeper":1,"key":', {
        mode: 0o600,
      });
    },
  },
);
