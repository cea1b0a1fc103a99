import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../../src/exports/file.js';
import { SessionManager } from '../../src/index.js';
import { startChild } from '../helpers/child.js';
import { rejection } from '../helpers/errors.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';

let as: FakeAuthServer;
beforeAll(async () => {
  as = await startFakeAuthServer();
});
afterAll(() => as.close());

// The lock the dying process holds frees after a second.
const workerConfig = (dir: string) =>
  JSON.stringify({
    dir,
    tokenEndpoint: as.tokenEndpoint,
    client: { clientId: as.clientId, clientSecret: as.clientSecret },
    leaseMs: 1000,
    timeoutMs: 500, // the fence keeps the lease for at least the request timeout plus a margin
  });

async function setup() {
  const dir = join(mkdtempSync(join(tmpdir(), 'tk-crash-')), 'store');
  const manager = new SessionManager({
    store: fileStore({ path: dir }),
    tokenEndpoint: as.tokenEndpoint,
    client: { clientId: as.clientId, clientSecret: as.clientSecret },
    lock: { waitMs: 5_000 },
    undecidedWaitMs: 500,
  });
  const old = as.issue({ expiresIn: 0 });
  await manager.adopt('u', old);
  as.resetCounts();
  return { dir, manager, old };
}

describe('a process killed in the middle of a refresh', () => {
  it('after the write: the session is usable afterwards, with the new tokens', async () => {
    const { dir, manager, old } = await setup();
    const r = await startChild('session-worker.ts', ['crash', workerConfig(dir), 'u', 'after-write']).done;
    expect(r.signal).toBe('SIGKILL');
    expect(as.counts.refresh).toBe(1);
    const session = await manager.get('u');
    expect(session?.tokens.refreshToken).not.toBe(old.refresh_token);
    const token = await session?.getAccessToken();
    expect(as.isActive(token as string)).toBe(true);
    expect(as.counts.refresh).toBe(1); // the stored token was fresh: no second refresh
  }, 30_000);

  it('before the write: at worst reauth-required, with the old record intact and the store readable', async () => {
    const { dir, manager, old } = await setup();
    const r = await startChild('session-worker.ts', ['crash', workerConfig(dir), 'u', 'before-write']).done;
    expect(r.signal).toBe('SIGKILL');
    expect(as.counts.refresh).toBe(1);
    const session = await manager.get('u');
    expect(session?.tokens.refreshToken).toBe(old.refresh_token); // old record intact
    // The server rotated the token the dead process never stored: the old one is now a replay.
    const err = await rejection(session?.getAccessToken() as Promise<string>);
    expect(err.code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
    expect(err.message).toContain('interrupted');
    const after = await manager.get('u');
    expect(after?.status).toBe('reauth-required');
    expect(after?.toJSON().reason).toBe('renewal-interrupted');
    expect(after?.tokens.refreshToken).toBe(old.refresh_token);
    // The store is not corrupted: a new login under the same id works.
    await manager.adopt('u', as.issue());
    expect(as.isActive((await (await manager.get('u'))?.getAccessToken()) as string)).toBe(true);
  }, 30_000);
});
