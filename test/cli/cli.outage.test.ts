import { describe, expect, it } from 'vitest';
import { type ChildResult, startChild } from '../helpers/child.js';
import { unusedPort } from '../helpers/fake-as.js';

// The `tokenkeeper` command against a store nothing answers for: every command ends with the
// documented exit code 3 within a bound, never hangs on a client that keeps reconnecting, and
// says so without the password the store URL carries.

const BOUND_MS = 15_000;
const PASSWORD = 'hunter2secret';

/** Runs the command; kills it (and fails the test) if it outlives the bound. */
async function bounded(args: string[]): Promise<ChildResult & { ms: number }> {
  const started = Date.now();
  const run = startChild('../../src/cli/main.ts', args);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), BOUND_MS);
  const result = await run.done.finally(() => clearTimeout(timer));
  return { ...result, ms: Date.now() - started };
}

const COMMANDS: [string, (store: string) => string[]][] = [
  ['sessions list', (s) => ['sessions', 'list', '--store', s]],
  ['sessions show', (s) => ['sessions', 'show', 'alice', '--store', s]],
  ['sessions rm', (s) => ['sessions', 'rm', 'alice', '--store', s]],
  ['sessions clear', (s) => ['sessions', 'clear', '--yes', '--store', s]],
  ['migrate', (s) => ['migrate', '--from', s, '--to', s.replace(/\?.*/, '?namespace=other')]],
  [
    'rekey',
    (s) => [
      'rekey',
      '--store',
      s,
      '--key',
      `k1:${Buffer.alloc(32, 1).toString('base64')}`,
      '--new-key',
      `k2:${Buffer.alloc(32, 2).toString('base64')}`,
    ],
  ],
  ['doctor', (s) => ['doctor', '--store', s]],
];

describe.each(['redis', 'postgres'])('every command against a %s server that is not there', (kind) => {
  it.each(COMMANDS)(
    `%s exits 3 within ${BOUND_MS / 1000} s, naming no password`,
    async (_name, args) => {
      const port = await unusedPort();
      const store =
        kind === 'redis'
          ? `redis://:${PASSWORD}@127.0.0.1:${port}/0?password=${PASSWORD}`
          : `postgres://app:${PASSWORD}@127.0.0.1:${port}/db?password=${PASSWORD}`;
      const r = await bounded(args(store));
      expect(r.signal, `killed after ${r.ms} ms: it hung`).toBeNull();
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
      expect(r.stdout + r.stderr).not.toContain('password');
    },
    30_000,
  );
});
