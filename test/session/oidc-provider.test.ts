import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../../src/exports/file.js';
import { SessionManager, type SessionManagerOptions } from '../../src/index.js';
import { runChild, startChild, waitForOutput } from '../helpers/child.js';
import { rejection } from '../helpers/errors.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';

// Against oidc-provider, a real OpenID Provider, with refresh-token rotation on.
let op: RealAuthServer;
beforeAll(async () => {
  op = await startRealAuthServer();
});
afterAll(() => op.close());

const freshDir = () => join(mkdtempSync(join(tmpdir(), 'tk-op-')), 'store');
const options = (dir: string, extra: Partial<SessionManagerOptions> = {}): SessionManagerOptions => ({
  store: fileStore({ path: dir }),
  issuer: op.issuer,
  client: { clientId: op.clientId, clientSecret: op.clientSecret },
  ...extra,
});
const workerConfig = (dir: string) =>
  JSON.stringify({ dir, issuer: op.issuer, client: { clientId: op.clientId, clientSecret: op.clientSecret } });

describe('against oidc-provider', () => {
  it('logs in, refreshes with rotation, and treats a replayed refresh token as a revoked grant', async () => {
    const dir = freshDir();
    const manager = new SessionManager(options(dir));
    const minted = await op.mintRefreshToken('alice');
    const session = await manager.login({ grant: 'refresh_token', refreshToken: minted }, { sessionId: 'alice' });
    const rotated = session.tokens.refreshToken;
    expect(rotated).toBeDefined();
    expect(rotated).not.toBe(minted);
    const before = await session.getAccessToken();
    const after = await session.getAccessToken({ forceRefresh: true });
    expect(after).not.toBe(before);
    expect(session.tokens.refreshToken).not.toBe(rotated);
    expect((await manager.get('alice'))?.tokens.refreshToken).toBe(session.tokens.refreshToken);

    // Replaying a rotated refresh token: the provider revokes the grant, and our session learns it.
    const other = new SessionManager(options(freshDir()));
    expect((await rejection(other.login({ grant: 'refresh_token', refreshToken: rotated as string }))).code).toBe(
      'TOKENKEEPER_INVALID_GRANT',
    );
    const err = await rejection(session.getAccessToken({ forceRefresh: true }));
    expect(err.code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
    expect((await manager.get('alice'))?.status).toBe('reauth-required');
  });

  it('gets client-credentials tokens once for many managers with reuse', async () => {
    const dir = freshDir();
    const before = op.counts.client_credentials;
    const managers = Array.from({ length: 4 }, () => new SessionManager(options(dir)));
    const sessions = await Promise.all(
      managers.map((m) =>
        m.login({ grant: 'client_credentials', scope: 'api:read' }, { sessionId: 'svc', reuse: true }),
      ),
    );
    expect(op.counts.client_credentials - before).toBe(1);
    expect(new Set(await Promise.all(sessions.map((s) => s.getAccessToken()))).size).toBe(1);
  });

  it('revokes at logout (RFC 7009): the refresh token is dead afterwards', async () => {
    const manager = new SessionManager(options(freshDir()));
    const session = await manager.login(
      { grant: 'refresh_token', refreshToken: await op.mintRefreshToken() },
      { sessionId: 'bob' },
    );
    const rt = session.tokens.refreshToken as string;
    const revocations = op.counts.revocations;
    expect(await session.logout()).toEqual({ revoked: true, refreshToken: 'revoked', accessToken: 'revoked' });
    expect(op.counts.revocations).toBe(revocations + 2); // the refresh token, then the access token
    expect(await manager.get('bob')).toBeUndefined();
    const other = new SessionManager(options(freshDir()));
    expect((await rejection(other.login({ grant: 'refresh_token', refreshToken: rt }))).code).toBe(
      'TOKENKEEPER_INVALID_GRANT',
    );
  });

  it('restores a stored session in a new process without logging in, and refreshes there', async () => {
    const dir = freshDir();
    const manager = new SessionManager(options(dir));
    const session = await manager.login(
      { grant: 'refresh_token', refreshToken: await op.mintRefreshToken() },
      { sessionId: 'carol' },
    );
    const token = await session.getAccessToken();
    const refreshes = op.counts.refresh_token;
    const restored = await runChild('session-worker.ts', ['token', workerConfig(dir), 'carol']);
    expect(JSON.parse(restored.stdout).token).toBe(token);
    expect(op.counts.refresh_token).toBe(refreshes);
    const refreshed = await runChild('session-worker.ts', ['token', workerConfig(dir), 'carol', 'force']);
    const newToken = JSON.parse(refreshed.stdout).token;
    expect(newToken).not.toBe(token);
    expect(op.counts.refresh_token).toBe(refreshes + 1);
    expect(await (await manager.get('carol'))?.getAccessToken()).toBe(newToken);
  }, 30_000);

  it('4 processes x 50 callers on one expired session: one refresh, no error', async () => {
    const dir = freshDir();
    const manager = new SessionManager(options(dir, { refreshSkewMs: 0 }));
    const session = await manager.login(
      { grant: 'refresh_token', refreshToken: await op.mintRefreshToken() },
      { sessionId: 'dave' },
    );
    // Make the stored access token expired, as if an hour had passed.
    const store = fileStore({ path: dir });
    const entry = await store.get('tokenkeeper:s:dave');
    const value = structuredClone(entry?.value) as { tokens: { expiresAt: number } };
    value.tokens.expiresAt = Date.now() - 1000;
    await store.set('tokenkeeper:s:dave', value as never);
    const before = { ...op.counts };
    const oldRefreshToken = session.tokens.refreshToken;
    const children = Array.from({ length: 4 }, () =>
      startChild('session-worker.ts', ['storm', workerConfig(dir), 'dave', '50']),
    );
    await Promise.all(children.map((c) => waitForOutput(c.child, 'ready')));
    writeFileSync(`${dir}.go`, '');
    const results = await Promise.all(children.map((c) => c.done));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(op.counts.refresh_token - before.refresh_token).toBe(1);
    expect(op.counts.errors - before.errors).toBe(0);
    const tokens = new Set(results.flatMap((r) => JSON.parse(r.stdout.trim().split('\n').pop() as string).tokens));
    expect(tokens.size).toBe(1);
    expect((await manager.get('dave'))?.tokens.refreshToken).not.toBe(oldRefreshToken);
  }, 60_000);
});

describe('two apps on one machine, each with its own oidc-provider server and client', () => {
  it('share the default folder, namespace and session id, and B never sends A’s tokens anywhere', async () => {
    const a = await startRealAuthServer({ clientId: 'app-a' });
    const b = await startRealAuthServer({ clientId: 'app-b' });
    const env = { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'tk-two-apps-')) };
    const run = async (server: RealAuthServer, mode: string, rt?: string) => {
      const args = [server.issuer, server.clientId, server.clientSecret, mode, ...(rt ? [rt] : [])];
      const r = await startChild('app-worker.ts', args, { env }).done;
      return JSON.parse(r.stdout.trim()) as { ok: boolean; code?: string };
    };
    expect(await run(a, 'login', await a.mintRefreshToken())).toEqual({ ok: true });
    expect(a.counts.refresh_token).toBe(1);
    // B finds A's session where its own would be: refused, nothing sent to either server.
    expect(await run(b, 'use')).toEqual({ ok: false, code: 'TOKENKEEPER_SESSION_MISMATCH' });
    expect(await run(b, 'login', await b.mintRefreshToken())).toEqual({
      ok: false,
      code: 'TOKENKEEPER_SESSION_MISMATCH',
    });
    expect(b.counts.refresh_token).toBe(0);
    expect(a.counts.refresh_token).toBe(1);
    // A's session is intact and still renews at A's server.
    expect(await run(a, 'use')).toEqual({ ok: true });
    expect(a.counts.refresh_token).toBe(2);
    expect(a.counts.errors).toBe(0);
    await a.close();
    await b.close();
  }, 60_000);
});
