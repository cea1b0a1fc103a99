import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultStorePath, fileStore } from '../src/exports/file.js';
import { isTokenkeeperError } from '../src/index.js';
import { startChild } from './helpers/child.js';
import { rejection } from './helpers/errors.js';

const base = () => mkdtempSync(join(tmpdir(), 'tk-file-'));

describe('fileStore on disk', () => {
  it('creates a 0700 directory and 0600 files whatever the umask', async () => {
    const dir = join(base(), 'nested', 'store');
    const old = process.umask(0o000);
    try {
      const store = fileStore({ path: dir });
      await store.set('user:1', { a: 1 });
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      const files = readdirSync(dir);
      expect(files).toHaveLength(1);
      expect(statSync(join(dir, files[0] as string)).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it('names files so that no key escapes the directory', async () => {
    const root = base();
    const dir = join(root, 'store');
    const store = fileStore({ path: dir });
    await store.set('../../outside', { a: 1 });
    await store.set('/etc/passwd', { a: 1 });
    expect(readdirSync(root)).toEqual(['store']);
    for (const name of readdirSync(dir)) expect(name).toMatch(/^(?:[a-z0-9_~-]|%[0-9A-F]{2})+\.json$/);
  });

  it('reports a truncated file as a corrupt record naming the file, and keeps other keys readable', async () => {
    const dir = join(base(), 'store');
    const store = fileStore({ path: dir });
    await store.set('good', { a: 1 });
    await store.set('bad', { a: 2 });
    const badFile = join(dir, 'bad.json');
    writeFileSync(badFile, readFileSync(badFile, 'utf8').slice(0, 20));
    const err = await rejection(store.get('bad'));
    expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(err.key).toBe('bad');
    expect(err.message).toContain(badFile);
    expect(err.message).toMatch(/delete the key/);
    expect(err).not.toBeInstanceOf(SyntaxError);
    expect((await store.get('good'))?.value).toEqual({ a: 1 });
    // Still listed, so it can be found; never written over; deleting it recovers.
    const keys: string[] = [];
    for await (const k of store.keys()) keys.push(k);
    expect(keys.sort()).toEqual(['bad', 'good']);
    expect((await rejection(store.set('bad', { a: 3 }))).code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(await store.delete('bad')).toBe(true);
    await store.set('bad', { a: 3 });
    expect((await store.get('bad'))?.value).toEqual({ a: 3 });
  });

  it('reports a hand-edited file of valid JSON but the wrong shape, and a file renamed to another key', async () => {
    const dir = join(base(), 'store');
    const store = fileStore({ path: dir });
    await store.set('a', { v: 1 });
    await store.set('b', { v: 2 });
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ accessToken: 'hand-written' }));
    expect((await rejection(store.get('a'))).code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    writeFileSync(join(dir, 'a.json'), readFileSync(join(dir, 'b.json')));
    const err = await rejection(store.get('a'));
    expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(err.message).toMatch(/another key/);
  });

  it('refuses a directory other users can read', async () => {
    const dir = join(base(), 'open');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const err = await rejection(fileStore({ path: dir }).set('k', { a: 1 }));
    expect(err.code).toBe('TOKENKEEPER_INSECURE_PERMISSIONS');
    expect(err.message).toContain('a directory of its own');
    expect(err.message).not.toContain('chmod'); // not the store's folder to change: it may be a home or /tmp
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a path that is a file', async () => {
    const file = join(base(), 'file');
    writeFileSync(file, 'x');
    const err = await rejection(fileStore({ path: file }).get('k'));
    expect(err.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(err.message).toContain('not a directory');
  });

  it('fails with a typed error when the directory is not writable, and keeps what is stored', async () => {
    const dir = join(base(), 'ro');
    const store = fileStore({ path: dir });
    await store.set('kept', { a: 1 });
    chmodSync(dir, 0o500);
    let stderr: string;
    if (process.getuid?.() === 0) {
      // root ignores permissions: try as nobody, who owns the directory but may not write it.
      chmodSync(join(dir, '..'), 0o755);
      chownSync(dir, 65534, 65534);
      const r = await startChild('file-worker.ts', ['write-once', dir], { uid: 65534 }).done;
      expect(r.code).toBe(1);
      stderr = r.stderr;
    } else {
      stderr = await fileStore({ path: dir })
        .set('mine', { ok: true })
        .then(
          () => '',
          (e) => `${e.code} ${e.message}`,
        );
    }
    expect(stderr).toContain('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(stderr).toMatch(/EACCES|may write/);
    chmodSync(dir, 0o700);
    if (process.getuid?.() === 0) chownSync(dir, 0, 0);
    expect((await fileStore({ path: dir }).get('kept'))?.value).toEqual({ a: 1 });
  }, 30_000);

  it('ignores temp files left by a crash mid-write', async () => {
    const dir = join(base(), 'store');
    const store = fileStore({ path: dir });
    await store.set('k', { a: 1 });
    writeFileSync(join(dir, '.tmp-deadbeef'), '{"tokenkeeper":1,"key":"k","vers', { mode: 0o600 });
    expect((await store.get('k'))?.value).toEqual({ a: 1 });
    const keys: string[] = [];
    for await (const k of store.keys()) keys.push(k);
    expect(keys).toEqual(['k']);
  });

  it('works without fsync too', async () => {
    const store = fileStore({ path: join(base(), 'store'), fsync: false });
    await store.set('k', { a: 1 });
    expect((await store.get('k'))?.value).toEqual({ a: 1 });
  });

  it('refuses bad options', () => {
    for (const bad of [null, 'dir', { path: '' }, { path: 42 }]) {
      let err: unknown;
      try {
        fileStore(bad as never);
      } catch (e) {
        err = e;
      }
      expect(isTokenkeeperError(err, 'TOKENKEEPER_INVALID_ARGUMENT')).toBe(true);
    }
  });
});

describe('defaultStorePath', () => {
  it('follows each platform', () => {
    expect(defaultStorePath({ XDG_CONFIG_HOME: '/xdg' }, 'linux', '/home/me')).toBe('/xdg/tokenkeeper');
    expect(defaultStorePath({}, 'linux', '/home/me')).toBe('/home/me/.config/tokenkeeper');
    expect(defaultStorePath({ XDG_CONFIG_HOME: 'relative' }, 'linux', '/home/me')).toBe('/home/me/.config/tokenkeeper');
    expect(defaultStorePath({}, 'darwin', '/Users/me')).toBe('/Users/me/Library/Application Support/tokenkeeper');
    expect(defaultStorePath({ APPDATA: 'C:/Users/me/AppData/Roaming' }, 'win32', 'C:/Users/me')).toMatch(
      /Roaming[\\/]tokenkeeper$/,
    );
  });

  it('is where fileStore() goes without a path', async () => {
    const xdg = base();
    const old = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = xdg;
    try {
      const store = fileStore();
      expect(store.name).toBe(`file:${join(xdg, 'tokenkeeper')}`);
      await store.set('k', { a: 1 });
      expect(readdirSync(join(xdg, 'tokenkeeper'))).toEqual(['k.json']);
    } finally {
      if (old === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = old;
    }
  });
});
