import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChild } from '../helpers/child.js';

// keychainStore on a machine where no keychain can be reached: no D-Bus session bus at all, or
// one without a Secret Service. Every operation is TOKENKEEPER_STORE_UNAVAILABLE saying what to
// do, in a process that ends normally (no uncaught D-Bus error).

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(process.platform !== 'linux')('keychainStore with no reachable keychain', () => {
  it.each([
    ['a bus address pointing nowhere', 'unix:path=/nonexistent/tokenkeeper-bus'],
    ['no bus address (a headless session)', ''],
  ])(
    '%s: every operation is TOKENKEEPER_STORE_UNAVAILABLE',
    async (_what, address) => {
      const dir = mkdtempSync(join(tmpdir(), 'tk-headless-'));
      dirs.push(dir);
      const r = await startChild('keychain-headless.ts', [join(dir, 'locks')], {
        env: { DBUS_SESSION_BUS_ADDRESS: address, DISPLAY: '' },
      }).done;
      expect(r.code, r.stderr).toBe(0);
      const results = JSON.parse(r.stdout.trim()) as Record<string, string>;
      expect(Object.keys(results)).toEqual(['get', 'set', 'delete', 'keys', 'manager.get', 'manager.adopt']);
      for (const [operation, outcome] of Object.entries(results)) {
        expect(outcome, operation).toMatch(/^TOKENKEEPER_STORE_UNAVAILABLE: the keychain \(\w+\) cannot be used/);
        expect(outcome, operation).toContain('Secret Service');
        expect(outcome, operation).toContain('fileStore');
      }
    },
    60_000,
  );
});
