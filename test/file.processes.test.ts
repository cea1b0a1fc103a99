import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import { isTokenkeeperError } from '../src/index.js';
import { currentProcess } from '../src/store/kit/liveness.js';
import { runChild, startChild, waitForOutput } from './helpers/child.js';

const freshDir = () => join(mkdtempSync(join(tmpdir(), 'tk-proc-')), 'store');

describe('fileStore shared by real processes', () => {
  it('loses no write when 6 processes set different keys at once', async () => {
    const dir = freshDir();
    await Promise.all(
      Array.from({ length: 6 }, (_, id) => runChild('file-worker.ts', ['sets', dir, String(id), '40'])),
    );
    const store = fileStore({ path: dir });
    for (let id = 0; id < 6; id++) {
      for (let i = 0; i < 40; i++) expect((await store.get(`p${id}:${i}`))?.value).toEqual({ id, i });
    }
    let count = 0;
    for await (const _ of store.keys()) count++;
    expect(count).toBe(240);
  }, 60_000);

  it('never hands out one version twice across processes', async () => {
    const dir = freshDir();
    const results = await Promise.all(Array.from({ length: 4 }, () => runChild('file-worker.ts', ['same', dir, '25'])));
    const versions = results.flatMap((r) => JSON.parse(r.stdout) as number[]);
    expect(versions).toHaveLength(100);
    expect(new Set(versions).size).toBe(100);
    expect((await fileStore({ path: dir }).get('same'))?.version).toBe(100);
  }, 60_000);

  it('excludes other processes while a lock is held (no lost counter increment)', async () => {
    const dir = freshDir();
    await Promise.all(Array.from({ length: 4 }, () => runChild('file-worker.ts', ['counter', dir, '25'])));
    expect((await fileStore({ path: dir }).get('counter'))?.value).toEqual({ n: 100 });
  }, 90_000);

  it('frees the lock of a process killed with SIGKILL at once, not when its 30 s lease ends', async () => {
    const dir = freshDir();
    const holder = startChild('file-worker.ts', ['hold', dir, '30000']);
    await waitForOutput(holder.child, 'held');
    const store = fileStore({ path: dir });
    const err = await store.lock('held', { waitMs: 100 }).catch((e) => e);
    expect(isTokenkeeperError(err, 'TOKENKEEPER_LOCK_TIMEOUT')).toBe(true);
    expect(err.holder?.pid).toBe(holder.child.pid);
    expect(err.message).toContain(`pid ${holder.child.pid}`);
    holder.child.kill('SIGKILL');
    expect((await holder.done).signal).toBe('SIGKILL');
    const started = Date.now();
    const lease = await store.lock('held', { waitMs: 10_000 });
    expect(Date.now() - started).toBeLessThan(1_000);
    await lease.release();
  }, 30_000);

  it('takes a lock whose holder pid now belongs to another process (a reused pid), never a live holder', async () => {
    const dir = freshDir();
    const store = fileStore({ path: dir });
    await store.get('warm'); // creates the folder
    const me = currentProcess();
    const plant = (key: string, owner: object) =>
      writeFileSync(join(dir, `${key}.lock`), JSON.stringify({ expiresAt: Date.now() + 30_000, ...owner }), {
        mode: 0o600,
      });
    // This test's own pid, alive, but recorded with another start time: the pid was reused.
    plant('reused', { token: 'old', pid: me.pid, host: me.host, start: (me.start ?? 0) + 12_345 });
    // The same pid and start: a live holder, however it looks.
    plant('live', { token: 'live', pid: me.pid, host: me.host, start: me.start });
    // Another host's holder: nothing can be known, so only its lease frees it.
    plant('remote', { token: 'remote', pid: 1, host: 'another-host', start: 1 });
    const started = Date.now();
    await (await store.lock('reused', { waitMs: 5_000 })).release();
    expect(Date.now() - started).toBeLessThan(1_000);
    for (const key of ['live', 'remote']) {
      const err = await store.lock(key, { waitMs: 200 }).catch((e) => e);
      expect(isTokenkeeperError(err, 'TOKENKEEPER_LOCK_TIMEOUT')).toBe(true);
    }
  }, 30_000);
});
