import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStoreUrl } from '../../src/cli/stores.js';
import { encryptedStore } from '../../src/codec/encrypted.js';
import { type ChildResult, startChild } from '../helpers/child.js';

// The `tokenkeeper` command line at its edges, as an operator would misuse it: a real process per
// command, its output and exit code checked.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tk-cli-edges-'));
  dirs.push(d);
  return d;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildResult> {
  return startChild('../../src/cli/main.ts', args, { env }).done;
}

function json<T>(r: ChildResult): T {
  return JSON.parse(r.stdout.trim()) as T;
}

const OLD = Buffer.alloc(32, 1).toString('base64');
const NEW = Buffer.alloc(32, 2).toString('base64');

describe('rekey', () => {
  it('refuses a new key that reuses the id of an old one (exit 2), and every record stays readable with the old key', async () => {
    const url = `sqlite:${join(tmp(), 'sessions.db')}`;
    const raw = await openStoreUrl(url);
    const old = encryptedStore(raw, { keys: { k1: OLD }, current: 'k1' });
    for (let i = 0; i < 5; i++) await old.set(`tokenkeeper:s:u${i}`, { i });
    const r = await cli(['rekey', '--store', url, '--key', `k1:${OLD}`, '--new-key', `k1:${NEW}`, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(JSON.parse(r.stderr).error).toContain('two different keys have the id "k1"');
    expect(r.stderr).not.toContain(OLD);
    expect(r.stderr).not.toContain(NEW);
    for (let i = 0; i < 5; i++) expect((await old.get(`tokenkeeper:s:u${i}`))?.value).toEqual({ i });
    await raw.close();
  }, 30_000);

  it('counts what it read back with the new key alone; a record the new key cannot read is a failure, not "already done"', async () => {
    const url = `sqlite:${join(tmp(), 'sessions.db')}`;
    const raw = await openStoreUrl(url);
    const old = encryptedStore(raw, { keys: { k1: OLD }, current: 'k1' });
    for (let i = 0; i < 3; i++) await old.set(`tokenkeeper:s:u${i}`, { i });
    // A record that says "k2" but was written with another key of that id (a key mix-up).
    const impostor = encryptedStore(raw, { keys: { k2: Buffer.alloc(32, 7).toString('base64') }, current: 'k2' });
    await impostor.set('tokenkeeper:s:mixup', { lost: true });
    const r = await cli(['rekey', '--store', url, '--key', `k1:${OLD}`, '--new-key', `k2:${NEW}`, '--json']);
    expect(r.code).toBe(4);
    expect(json(r)).toEqual({ keys: 4, rekeyed: 3, already: 0, verified: 3, failed: 1 });
    const text = await cli(['rekey', '--store', url, '--key', `k1:${OLD}`, '--new-key', `k2:${NEW}`]);
    expect(text.stdout).toContain(
      '4 records: 0 re-encrypted, 3 already under the new key, 3 read back with the new key alone, 1 failed',
    );
    const fresh = encryptedStore(raw, { keys: { k2: NEW }, current: 'k2' });
    for (let i = 0; i < 3; i++) expect((await fresh.get(`tokenkeeper:s:u${i}`))?.value).toEqual({ i });
    await raw.close();
  }, 30_000);
});

describe('doctor --store file:', () => {
  type Check = { check: string; ok: boolean; detail: string };
  const folder = (r: ChildResult) => json<Check[]>(r).find((c) => c.check === 'file permissions');

  it('checks the folder the library uses (the default folder), not /', async () => {
    const config = tmp();
    const r = await cli(['doctor', '--store', 'file:', '--json'], { XDG_CONFIG_HOME: config, HOME: config });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(folder(r)).toEqual({
      check: 'file permissions',
      ok: true,
      detail: `${join(config, 'tokenkeeper')} does not exist yet (the store makes it, mode 0700, on first use)`,
    });
    const again = await cli(['doctor', '--store', 'file:?namespace=app_1', '--json'], { XDG_CONFIG_HOME: config });
    expect(folder(again)?.detail).toBe(
      `${join(config, 'tokenkeeper', 'apps', 'app_1')} does not exist yet (the store makes it, mode 0700, on first use)`,
    );
    const made = await cli(['doctor', '--store', 'file:', '--json'], { XDG_CONFIG_HOME: config });
    expect(folder(made)).toEqual({
      check: 'file permissions',
      ok: true,
      detail: `${join(config, 'tokenkeeper')} is 0700`,
    });
  }, 30_000);

  it('never advises chmod on a folder that holds more than the store: it says to give the store a folder of its own', async () => {
    const shared = tmp();
    writeFileSync(join(shared, 'notes.txt'), 'mine');
    chmodSync(shared, 0o755);
    const r = await cli(['doctor', '--store', `file:${shared}`, '--json']);
    expect(r.code).not.toBe(0);
    expect(folder(r)?.ok).toBe(false);
    expect(folder(r)?.detail).toBe(
      `${shared} is 0755: other users can read it; the store refuses it: give the store a folder of its own (a path that does not exist yet, which it makes 0700)`,
    );
    expect(r.stdout).not.toContain('chmod');
    // A folder with the store's files only (its mode changed by hand): chmod is the fix.
    const own = join(tmp(), 'store');
    mkdirSync(own, { mode: 0o700 });
    writeFileSync(join(own, 'tokenkeeper%3As%3Aalice.json'), '{}');
    chmodSync(own, 0o750);
    expect(folder(await cli(['doctor', '--store', `file:${own}`, '--json']))?.detail).toBe(
      `${own} is 0750: other users can read it; chmod 700 ${own}`,
    );
  }, 30_000);
});
