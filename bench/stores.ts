import { promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileStore } from '../src/exports/file.js';
import { memoryStore } from '../src/index.js';
import { comparePairs } from './harness.js';
import { record } from './record.js';

export async function benchStores(): Promise<void> {
  const mem = memoryStore();
  const map = new Map<string, unknown>();
  for (let i = 0; i < 1000; i++) {
    await mem.set(`k${i}`, record);
    map.set(`k${i}`, record);
  }
  let i = 0;
  await comparePairs('memoryStore vs a bare Map (async, 1,000 keys)', [
    {
      name: 'memoryStore.get',
      baselineName: 'Map.get',
      ours: () => mem.get(`k${i++ % 1000}`),
      baseline: async () => map.get(`k${i++ % 1000}`),
    },
    {
      name: 'memoryStore.set',
      baselineName: 'Map.set',
      ours: () => mem.set(`k${i++ % 1000}`, record),
      baseline: async () => map.set(`k${i++ % 1000}`, record),
    },
  ]);

  const root = mkdtempSync(join(tmpdir(), 'tk-bench-'));
  const durable = fileStore({ path: join(root, 'durable') });
  const fast = fileStore({ path: join(root, 'nosync'), fsync: false });
  const plainDir = join(root, 'plain');
  await fs.mkdir(plainDir);
  await durable.set('k', record);
  await fast.set('k', record);
  await fs.writeFile(join(plainDir, 'k.json'), JSON.stringify(record));
  // Sharetribe's file store: fs.promises.writeFile of the JSON, in place, no lock, no fsync.
  const plainWrite = () => fs.writeFile(join(plainDir, 'k.json'), JSON.stringify(record));
  await comparePairs('fileStore vs plain fs (Sharetribe-style writeFile / readFile+JSON.parse)', [
    {
      name: 'fileStore.get',
      baselineName: 'readFile+parse',
      ours: () => durable.get('k'),
      baseline: async () => JSON.parse(await fs.readFile(join(plainDir, 'k.json'), 'utf8')),
    },
    {
      name: 'fileStore.set (fsync)',
      baselineName: 'writeFile',
      ours: () => durable.set('k', record),
      baseline: plainWrite,
    },
    {
      name: 'fileStore.set (fsync: false)',
      baselineName: 'writeFile',
      ours: () => fast.set('k', record),
      baseline: plainWrite,
    },
  ]);
  await fs.rm(root, { recursive: true, force: true });
}
