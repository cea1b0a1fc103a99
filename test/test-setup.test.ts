// scripts/test-setup.sh, npm test's pretest: on a machine missing the tests' tools it names them,
// and it fails, saying what to do, when it cannot install them (never a silent skip).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../scripts/test-setup.sh', import.meta.url));
// A PATH with the shell's basics only: no redis, psql, chromium, keyring, dbus, apt-get.
const bare = mkdtempSync(join(tmpdir(), 'tk-setup-'));
for (const tool of ['bash', 'env', 'id', 'sort', 'seq', 'sleep', 'ls', 'grep', 'sed', 'tail', 'mkdir', 'dirname']) {
  const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  if (found) symlinkSync(found, join(bare, tool));
}
afterAll(() => rmSync(bare, { recursive: true, force: true }));
const run = (args: string[]) =>
  spawnSync(join(bare, 'bash'), [script, ...args], {
    encoding: 'utf8',
    env: { PATH: bare, CHROMIUM_PATH: join(bare, 'no-chromium') },
  });

describe('scripts/test-setup.sh', () => {
  it('names every apt package the tests need and the machine lacks (--missing, for .ci/run)', () => {
    const r = run(['--missing']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(
      expect.arrayContaining(['chromium', 'dbus', 'gnome-keyring', 'postgresql-client', 'redis-server']),
    );
  });

  it('fails with what to install when it cannot install it', () => {
    const r = run([]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/test-setup: missing .*chromium.*, and no apt-get to install them: install them/);
  });

  it('is quiet and succeeds on this machine, which has everything', () => {
    const r = spawnSync('bash', [script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });
});
