/**
 * Page side of `npm run bench -- browser`: the browser stores against the raw browser APIs,
 * measured in the same page, in alternating rounds (these machines are noisy).
 */
import { indexedDbStore, webStorageStore } from '../../src/index.js';
import { record } from '../record.js';

interface Pair {
  name: string;
  baselineName: string;
  ours: (i: number) => Promise<unknown>;
  baseline: (i: number) => Promise<unknown>;
}

/** ops/s of each side, alternating rounds of `roundMs` until `totalMs`. */
async function measure(pair: Pair, totalMs: number, roundMs = 100) {
  const done = { ours: 0, baseline: 0 };
  const spent = { ours: 0, baseline: 0 };
  let i = 0;
  const deadline = performance.now() + totalMs;
  while (performance.now() < deadline) {
    for (const side of ['ours', 'baseline'] as const) {
      const start = performance.now();
      while (performance.now() - start < roundMs) {
        await pair[side](i++);
        done[side]++;
      }
      spent[side] += performance.now() - start;
    }
  }
  return {
    name: pair.name,
    opsPerSec: (done.ours / spent.ours) * 1000,
    baselineName: pair.baselineName,
    baselineOpsPerSec: (done.baseline / spent.baseline) * 1000,
  };
}

function rawIdb(name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore('s');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function rawTx<T>(db: IDBDatabase, mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction('s', mode, { durability: mode === 'readwrite' ? 'strict' : 'default' });
    const req = op(tx.objectStore('s'));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
  });
}

async function run(totalMs = 1500) {
  const tag = Date.now().toString(36);
  const idb = indexedDbStore({ name: `bench-${tag}` });
  const raw = await rawIdb(`bench-raw-${tag}`);
  const ls = webStorageStore(localStorage, { prefix: `bench${tag}` });
  for (let k = 0; k < 100; k++) {
    await idb.set(`k${k}`, record);
    await rawTx(raw, 'readwrite', (s) => s.put(JSON.stringify(record), `k${k}`));
    await ls.set(`k${k}`, record);
    localStorage.setItem(`raw${tag}:k${k}`, JSON.stringify(record));
  }
  // Locks first: tens of thousands of localStorage writes later queue up in the browser process
  // and slow every Web Lock request behind them, ours and the baseline's alike.
  const pairs: Pair[] = [
    {
      name: 'indexedDbStore lock + release',
      baselineName: 'navigator.locks.request, empty',
      ours: async (i) => (await idb.lock(`l${i % 10}`)).release(),
      baseline: (i) => navigator.locks.request(`raw-l${i % 10}`, async () => {}),
    },
    {
      name: 'indexedDbStore.get',
      baselineName: 'IndexedDB get + JSON.parse',
      ours: (i) => idb.get(`k${i % 100}`),
      baseline: async (i) => JSON.parse(await rawTx(raw, 'readonly', (s) => s.get(`k${i % 100}`))),
    },
    {
      name: 'indexedDbStore.set (strict)',
      baselineName: 'IndexedDB put, strict durability',
      ours: (i) => idb.set(`k${i % 100}`, record),
      baseline: (i) => rawTx(raw, 'readwrite', (s) => s.put(JSON.stringify(record), `k${i % 100}`)),
    },
    {
      name: 'webStorageStore.get',
      baselineName: 'localStorage.getItem + JSON.parse',
      ours: (i) => ls.get(`k${i % 100}`),
      baseline: async (i) => JSON.parse(localStorage.getItem(`raw${tag}:k${i % 100}`) as string),
    },
    {
      name: 'webStorageStore.set',
      baselineName: 'localStorage.setItem(JSON.stringify)',
      ours: (i) => ls.set(`k${i % 100}`, record),
      baseline: async (i) => localStorage.setItem(`raw${tag}:k${i % 100}`, JSON.stringify(record)),
    },
  ];
  const rows = [];
  for (const pair of pairs) rows.push(await measure(pair, totalMs));
  await idb.close();
  await ls.close();
  raw.close();
  return rows;
}

Object.assign(globalThis, { browserBench: { run } });
