import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { openStoreUrl } from '../../src/cli/stores.js';
import { encryptedStore } from '../../src/codec/encrypted.js';
import { SessionManager, type Store } from '../../src/index.js';
import { CHILD_BUNDLES, type ChildResult, startChild } from '../helpers/child.js';

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
    // The folder now holds one app's folder and no records of its own: `file:` is that app's store.
    const made = await cli(['doctor', '--store', 'file:', '--json'], { XDG_CONFIG_HOME: config });
    expect(folder(made)).toEqual({
      check: 'file permissions',
      ok: true,
      detail: `${join(config, 'tokenkeeper', 'apps', 'app_1')} is 0700`,
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

async function seedSessions(store: Store, ids: string[]): Promise<void> {
  // adopt() stores the tokens it is given; nothing is sent to this endpoint.
  const manager = new SessionManager({ store, tokenEndpoint: 'http://127.0.0.1:9/token', client: { clientId: 'c' } });
  for (const id of ids) {
    await manager.adopt(id, { access_token: 'at', refresh_token: 'rt', token_type: 'Bearer', expires_in: 3600 });
  }
}

describe('sessions list and show with hostile session ids', () => {
  // An id (by default the ID token's sub) with a terminal title escape, a CSI, a newline and a bidi override.
  const hostile = 'evil\u001b]0;pwned\u0007\u009b31m\nalice  active  fake-row\u202egnp.exe';

  it('shows control characters as escapes, never raw', async () => {
    const url = `file:${join(tmp(), 'store')}`;
    const store = await openStoreUrl(url);
    await seedSessions(store, [hostile, 'bob']);
    await store.close();
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/;
    const list = await cli(['sessions', 'list', '--store', url]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).not.toMatch(raw);
    expect(list.stdout.trim().split('\n')).toHaveLength(3); // the header, bob, and the hostile id on one line
    expect(list.stdout).toContain('evil\\x1b]0;pwned\\x07\\x9b31m\\nalice  active  fake-row\\u202egnp.exe');
    const show = await cli(['sessions', 'show', hostile, '--store', url]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).not.toMatch(raw);
    expect(show.stdout).toContain('\\x1b]0;pwned');
    const json = await cli(['sessions', 'list', '--store', url, '--json']);
    expect(json.stdout).not.toMatch(/[\u007f-\u009f\u202e]/);
    expect((JSON.parse(json.stdout) as { id: string }[]).map((r) => r.id)).toContain(hostile); // the same id, escaped
    const rm = await cli(['sessions', 'rm', hostile, '--store', url]);
    expect(rm.stdout).not.toMatch(raw);
  }, 30_000);
});

describe('sessions clear asks first', () => {
  let bundle: string | undefined;
  /** Runs the CLI on a terminal of its own (util-linux `script`), typing `answer` at its question. */
  function onTerminal(args: string[], answer: string): Promise<{ code: number | null; output: string }> {
    if (bundle === undefined) {
      bundle = join(CHILD_BUNDLES, `tty-main-${process.pid}.mjs`);
      buildSync({
        entryPoints: [join(import.meta.dirname, '../../src/cli/main.ts')],
        outfile: bundle,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        packages: 'external',
        logLevel: 'error',
      });
    }
    const quoted = [process.execPath, bundle, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const child = spawn('script', ['-qec', quoted, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let answered = false;
    child.stdin.on('error', () => {}); // the command may end before its input is read
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d;
      if (!answered && output.includes('Type yes to go on')) {
        answered = true;
        child.stdin.write(`${answer}\n`);
      }
    });
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
  }

  it.skipIf(!existsSync('/usr/bin/script'))(
    'on a terminal: nothing is removed unless the answer is yes',
    async () => {
      const url = `sqlite:${join(tmp(), 'sessions.db')}`;
      const store = await openStoreUrl(url);
      await seedSessions(store, ['a', 'b']);
      const no = await onTerminal(['sessions', 'clear', '--store', url], 'no');
      expect(no.output).toContain('Delete every session of namespace "tokenkeeper" in sqlite:');
      expect(no.output).toContain('cancelled: nothing removed');
      expect(no.code).toBe(1);
      const remaining = [];
      for await (const k of store.keys('tokenkeeper:s:')) remaining.push(k);
      expect(remaining).toHaveLength(2);
      const yes = await onTerminal(['sessions', 'clear', '--store', url], 'yes');
      expect(yes.output).toContain('removed 2 sessions');
      expect(yes.code).toBe(0);
      await store.close();
    },
    30_000,
  );

  it('without a terminal it needs --yes (exit 2, nothing removed)', async () => {
    const url = `sqlite:${join(tmp(), 'sessions.db')}`;
    const store = await openStoreUrl(url);
    await seedSessions(store, ['a']);
    const r = await cli(['sessions', 'clear', '--store', url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('add --yes to confirm');
    expect(await store.get('tokenkeeper:s:a')).toBeDefined();
    expect(json(await cli(['sessions', 'clear', '--yes', '--store', url, '--json']))).toEqual({ removed: 1 });
    await store.close();
  }, 30_000);
});

describe('a store URL pointing into a folder that does not exist', () => {
  it('is bad usage (exit 2), and nothing is created', async () => {
    const base = tmp();
    for (const [url, folder] of [
      [`sqlite:${join(base, 'typo', 'x.db')}`, join(base, 'typo')],
      [`file:${join(base, 'missing', 'dir')}`, join(base, 'missing')],
    ] as const) {
      for (const args of [
        ['sessions', 'list', '--store', url],
        ['doctor', '--store', url],
        ['migrate', '--from', `sqlite:${join(base, 'from.db')}`, '--to', url],
      ]) {
        const r = await cli(args);
        expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
        expect(r.stderr).toContain(`the folder ${folder} does not exist`);
        expect(existsSync(folder)).toBe(false);
      }
    }
  }, 60_000);
});

describe('doctor lists junk at lock paths', () => {
  it('names each file at a lock or write-guard path that holds no lock record, with what it is and its age', async () => {
    const dir = join(tmp(), 'store');
    const url = `file:${dir}`;
    const store = await openStoreUrl(url);
    await store.set('tokenkeeper:s:alice', { a: 1 }); // makes the folder
    await store.close();
    writeFileSync(join(dir, 'tokenkeeper%3As%3Aalice.wlock'), '');
    symlinkSync(join(dir, 'nowhere'), join(dir, 'tokenkeeper%3As%3Abob.lock'));
    const old = (Date.now() - 120_000) / 1000;
    for (const n of ['tokenkeeper%3As%3Aalice.wlock', 'tokenkeeper%3As%3Abob.lock'])
      lutimesSync(join(dir, n), old, old);
    const r = await cli(['doctor', '--store', url, '--json']);
    expect(r.code).toBe(1);
    const locks = json<{ check: string; ok: boolean; detail: string }[]>(r).find((c) => c.check === 'locks');
    expect(locks?.ok).toBe(false);
    expect(locks?.detail).toMatch(
      /^none held; 2 junk files at lock paths \(no lock record; the next taker clears each once older than a lease\): tokenkeeper%3As%3Aalice\.wlock \(an empty file, 1[12]\d s old\); tokenkeeper%3As%3Abob\.lock \(a symbolic link, 1[12]\d s old\)$/,
    );
  }, 30_000);
});
