// Whatever sits in a file store's folder (a dangling symlink, an empty file, garbage, a
// directory, a FIFO, a symlink to a file elsewhere), every call settles within its bounds with
// a typed error or a result: no spinning core, no hang, no read through a link.
import { execFileSync } from 'node:child_process';
import { lutimesSync, mkdirSync, mkdtempSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import { isTokenkeeperError } from '../src/index.js';
import { encodeKey } from '../src/store/file/names.js';

type Junk = 'dangling symlink' | 'empty file' | 'garbage' | 'directory' | 'FIFO' | 'symlink to a file elsewhere';
const kinds: Junk[] = ['dangling symlink', 'empty file', 'garbage', 'directory', 'FIFO', 'symlink to a file elsewhere'];

function plant(path: string, kind: Junk, outside: string) {
  switch (kind) {
    case 'dangling symlink':
      return symlinkSync(join(outside, 'nowhere'), path);
    case 'empty file':
      return writeFileSync(path, '');
    case 'garbage':
      return writeFileSync(path, '\u0000{not json');
    case 'directory':
      return mkdirSync(path);
    case 'FIFO':
      return execFileSync('mkfifo', [path]);
    case 'symlink to a file elsewhere': {
      const target = join(outside, 'planted.json');
      writeFileSync(target, JSON.stringify({ tokenkeeper: 1, key: 'k', version: 1, value: { stolen: true } }));
      return symlinkSync(target, path);
    }
  }
}

/** Settles (either way) within `ms`, with a result or a TokenkeeperError. */
async function settles(call: Promise<unknown>, ms: number) {
  const started = Date.now();
  const outcome = await Promise.race([
    call.then(
      (value) => ({ value }),
      (error) => ({ error }),
    ),
    new Promise<{ hung: true }>((r) => setTimeout(() => r({ hung: true }), ms + 3_000).unref()),
  ]);
  expect(outcome).not.toHaveProperty('hung');
  expect(Date.now() - started).toBeLessThan(ms + 1_000);
  if ('error' in outcome) expect(isTokenkeeperError(outcome.error)).toBe(true);
  return outcome as { value?: unknown; error?: unknown };
}

describe('file store with junk in its folder', () => {
  for (const kind of kinds) {
    for (const suffix of ['.lock', '.wlock', '.json', '.lock.break']) {
      it(`${kind} at <key>${suffix}: every call settles within its bounds`, async () => {
        const root = mkdtempSync(join(tmpdir(), 'tk-junk-'));
        const dir = join(root, 'store');
        const outside = join(root, 'outside');
        mkdirSync(outside);
        const store = fileStore({ path: dir, fsync: false });
        await store.get('warm'); // creates the folder
        const path = join(dir, `${encodeKey('k')}${suffix}`);
        plant(path, kind, outside);
        // Planted a while ago, so an unreadable lock file counts as a stale lease (a fresh one
        // holds for 30 s: the bounded wait on that is tested below, once, to keep the run short).
        const old = (Date.now() - 120_000) / 1000;
        lutimesSync(path, old, old);
        // A fresh junk lock counts as held for a while: waiting is bounded by waitMs, and a release
        // that finds junk at the breaker's path gives up after about a second (the lease ends).
        await settles(
          store.lock('k', { waitMs: 300 }).then((l) => l.release()),
          2_300,
        );
        const got = await settles(store.get('k'), 1_000);
        if (suffix === '.json') {
          // Never a record read through a link, nor a hang on a FIFO: a typed corrupt-record error.
          expect((got.error as { code?: string } | undefined)?.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
        }
        await settles(store.set('k', { a: 1 }), 16_000);
        await settles(store.delete('k', { force: true }), 16_000);
        const keys: string[] = [];
        await settles(
          (async () => {
            for await (const k of store.keys()) keys.push(k);
          })(),
          1_000,
        );
        await store.close();
      }, 60_000);
    }
  }

  it('a fresh junk write guard holds set() for one write lease (10 s), no longer: then it is cleared and the write done', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tk-junk-')), 'store');
    const store = fileStore({ path: dir, fsync: false });
    await store.get('warm');
    writeFileSync(join(dir, `${encodeKey('k')}.wlock`), 'garbage');
    const started = Date.now();
    const { value } = await settles(store.set('k', { a: 1 }), 15_000);
    expect(value).toBe(1);
    expect(Date.now() - started).toBeGreaterThan(9_000);
    await store.close();
  }, 30_000);

  it('breaks a junk lock file once it is older than a lease, and takes the lock', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tk-junk-')), 'store');
    const store = fileStore({ path: dir, fsync: false });
    await store.get('warm');
    const path = join(dir, `${encodeKey('k')}.lock`);
    writeFileSync(path, 'garbage');
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(path, old, old);
    const lease = await store.lock('k', { waitMs: 1_000 });
    await lease.release();
    await store.close();
  });
});
