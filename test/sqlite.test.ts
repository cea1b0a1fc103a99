import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sqliteStore } from '../src/exports/sqlite.js';
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

  it('frees the lock of a process killed with SIGKILL once its lease ends', async () => {
    const path = dbPath();
    const store = sqliteStore({ path });
    await store.get('warm');
    await lockOfKilledHolderFrees(store, { kind: 'sqlite', path }, 1_500);
    await store.close();
  }, 30_000);

  it('refuses bad options', () => {
    for (const bad of [undefined, {}, { path: '' }, { path: 'x', busyTimeoutMs: -1 }]) {
      expect(() => sqliteStore(bad as never)).toThrow(/sqliteStore|busyTimeoutMs/);
    }
  });
});
