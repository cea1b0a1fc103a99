// Junk at a lock or write-guard path (an empty file, garbage, a dangling symlink) older than one
// lease is a stale lock: cleared, so no key becomes unwritable for good.
import { lutimesSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import { encodeKey } from '../src/store/file/names.js';

type Junk = 'empty file' | 'garbage' | 'dangling symlink';
const kinds: Junk[] = ['empty file', 'garbage', 'dangling symlink'];

function plant(path: string, kind: Junk, outside: string, ageMs: number): void {
  if (kind === 'empty file') writeFileSync(path, '');
  else if (kind === 'garbage') writeFileSync(path, '\u0000{not json');
  else symlinkSync(join(outside, 'nowhere'), path);
  const at = (Date.now() - ageMs) / 1000;
  lutimesSync(path, at, at);
}

async function storeWithJunk(suffix: string, kind: Junk, ageMs: number) {
  const root = mkdtempSync(join(tmpdir(), 'tk-stale-'));
  const dir = join(root, 'store');
  const outside = join(root, 'outside');
  mkdirSync(outside);
  const store = fileStore({ path: dir, fsync: false });
  await store.get('warm'); // creates the folder
  plant(join(dir, `${encodeKey('k')}${suffix}`), kind, outside, ageMs);
  return { store, dir };
}

describe('junk at a lock or write-guard path, older than one lease', () => {
  for (const kind of kinds) {
    for (const suffix of ['.wlock', '.lock', '.wlock.break', '.lock.break']) {
      // Older than one lease: the write guard's is 10 s, a breaker's 5 s, a lock's the taker's
      // (the store's default 30 s here; the session manager takes 5 s leases).
      const age = suffix === '.lock' ? 31_000 : 11_000;
      it(`${kind} at <key>${suffix} (${age / 1000} s old): set, lock and delete work at once, and the junk is gone`, async () => {
        const { store, dir } = await storeWithJunk(suffix, kind, age);
        const t0 = Date.now();
        expect(await store.set('k', { a: 1 })).toBe(1);
        const lease = await store.lock('k', { waitMs: 2_000 });
        await lease.release();
        expect(await store.delete('k')).toBe(true);
        expect(Date.now() - t0).toBeLessThan(3_000);
        expect(readdirSync(dir).filter((n) => n.startsWith(encodeKey('k')))).toEqual([]);
        await store.close();
      }, 30_000);
    }
  }

  it('fresh junk (just planted) still counts as held: a lock waits for it, bounded by waitMs', async () => {
    const { store } = await storeWithJunk('.lock', 'garbage', 0);
    await expect(store.lock('k', { waitMs: 300 })).rejects.toMatchObject({ code: 'TOKENKEEPER_LOCK_TIMEOUT' });
    await store.close();
  });
});
