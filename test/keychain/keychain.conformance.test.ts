import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keychainStore } from '../../src/exports/keychain.js';
import { describeStoreConformance } from '../../src/exports/testing.js';
import { startChild } from '../helpers/child.js';
import { startSecretService } from '../helpers/secret-service.js';

// keychainStore against a real Secret Service (GNOME Keyring on a private D-Bus session).

let service: Awaited<ReturnType<typeof startSecretService>> | undefined;
const dirs: string[] = [];
let n = 0;
beforeAll(async () => {
  service = await startSecretService();
}, 30_000);
afterAll(async () => {
  await service?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function fresh() {
  const dir = mkdtempSync(join(tmpdir(), 'tk-keychain-'));
  dirs.push(dir);
  return keychainStore({ namespace: `conf${process.pid}x${n++}`, lockDir: join(dir, 'locks') });
}

describeStoreConformance('keychainStore (Secret Service)', fresh, {
  listCount: 60,
  // A record another program later wrote over, under the same service and account.
  corrupt: async (store, key) => {
    await store.set(key, { soon: 'overwritten' });
    const { AsyncEntry } = await import('@napi-rs/keyring');
    await new AsyncEntry(`tokenkeeper.conf${process.pid}x${n - 1}`, key, {
      linux: { store: 'secret-service' },
    }).setPassword('not a tokenkeeper entry');
  },
});

describe('keychainStore', () => {
  it('keeps records in the keychain, not in the lock folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-keychain-'));
    dirs.push(dir);
    const store = keychainStore({ namespace: 'visible', lockDir: join(dir, 'locks') });
    await store.set('tokenkeeper:s:alice', { secret: 'only-in-the-keychain' });
    const { AsyncEntry } = await import('@napi-rs/keyring');
    const raw = await new AsyncEntry('tokenkeeper.visible', 'tokenkeeper:s:alice', {
      linux: { store: 'secret-service' },
    }).getPassword();
    expect(raw).toContain('only-in-the-keychain');
    const { readdirSync, readFileSync } = await import('node:fs');
    const inFolder = readdirSync(join(dir, 'locks'))
      .map((f) => readFileSync(join(dir, 'locks', f), 'utf8'))
      .join('');
    expect(inFolder).not.toContain('only-in-the-keychain');
    await store.delete('tokenkeeper:s:alice');
    await store.close();
  });

  it('a Secret Service that is gone: TOKENKEEPER_STORE_UNAVAILABLE, not a hang', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-keychain-'));
    dirs.push(dir);
    const result = await startChild('keychain-worker.ts', ['gone', join(dir, 'locks')], {
      env: { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' },
    }).done;
    const outcome = JSON.parse(result.stdout.trim()) as { ok: boolean; code?: string; ms: number };
    expect(outcome).toMatchObject({ ok: false, code: 'TOKENKEEPER_STORE_UNAVAILABLE' });
    expect(outcome.ms).toBeLessThan(20_000);
  }, 30_000);
});
