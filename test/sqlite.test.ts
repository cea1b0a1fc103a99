import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sqliteStore } from '../src/exports/sqlite.js';
import { currentProcess } from '../src/store/kit/liveness.js';
import { lockOfKilledHolderFrees } from './helpers/dead-holder.js';
import { rejection } from './helpers/errors.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'tk-sqlite-')), 'tokens.db');

describe('sqliteStore on disk', () => {
  it('creates the database 0600, in WAL mode', async () => {
    const path = dbPath();
    const old = process.umask(0);
    try {
      const store = sqliteStore({ path });
      await store.set('k', { a: 1 });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
      await store.close();
    } finally {
      process.umask(old);
    }
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('reports a row edited by hand into invalid JSON, naming the key, while others stay readable', async () => {
    const path = dbPath();
    const store = sqliteStore({ path });
    await store.set('good', { a: 1 });
    await store.set('bad', { a: 2 });
    const raw = new Database(path);
    raw.prepare('UPDATE tokenkeeper_records SET value = ? WHERE key = ?').run('{"a": 2', 'bad');
    raw.close();
    const err = await rejection(store.get('bad'));
    expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(err.key).toBe('bad');
    expect((await store.get('good'))?.value).toEqual({ a: 1 });
    expect((await rejection(store.set('bad', { a: 3 }))).code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(await store.delete('bad')).toBe(true);
    await store.set('bad', { a: 3 });
    expect((await store.get('bad'))?.value).toEqual({ a: 3 });
    await store.close();
  });

  it('refuses a file that is not a database with a clear error', async () => {
    const path = dbPath();
    writeFileSync(path, 'this is not sqlite, just text that is long enough to look like a header '.repeat(10));
    const err = await rejection(sqliteStore({ path }).get('k'));
    expect(err.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(err.message).toMatch(/not an SQLite database|NOTADB/);
  });

  it('frees the lock of a process killed with SIGKILL at once, not when its 30 s lease ends', async () => {
    const path = dbPath();
    const store = sqliteStore({ path });
    await store.get('warm');
    await lockOfKilledHolderFrees(store, { kind: 'sqlite', path }, 30_000, 1_000);
    await store.close();
  }, 30_000);

  it('takes a lock whose holder pid now belongs to another process (a reused pid), never a live holder', async () => {
    const path = dbPath();
    const store = sqliteStore({ path });
    await store.get('warm');
    const me = currentProcess();
    const raw = new Database(path);
    const plant = raw.prepare(
      'INSERT OR REPLACE INTO tokenkeeper_locks (key, token, expires_at, pid, host, start) VALUES (?, ?, ?, ?, ?, ?)',
    );
    // This test's own pid, alive, but recorded with another start time: the pid was reused.
    plant.run('reused', 'old-holder', Date.now() + 30_000, me.pid, me.host, (me.start ?? 0) + 12_345);
    // The same pid and start: a live holder, however it looks.
    plant.run('live', 'live-holder', Date.now() + 30_000, me.pid, me.host, me.start ?? null);
    // Another host's holder: nothing can be known, so only its lease frees it.
    plant.run('remote', 'remote-holder', Date.now() + 30_000, 1, 'another-host', 1);
    raw.close();
    const started = Date.now();
    await (await store.lock('reused', { waitMs: 5_000 })).release();
    expect(Date.now() - started).toBeLessThan(1_000);
    for (const key of ['live', 'remote']) {
      expect((await rejection(store.lock(key, { waitMs: 200 }))).code).toBe('TOKENKEEPER_LOCK_TIMEOUT');
    }
    await store.close();
  }, 30_000);

  it('refuses bad options', () => {
    for (const bad of [undefined, {}, { path: '' }, { path: 'x', busyTimeoutMs: -1 }]) {
      expect(() => sqliteStore(bad as never)).toThrow(/sqliteStore|busyTimeoutMs/);
    }
  });
});
