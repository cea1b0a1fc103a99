import { beforeEach, describe, expect, it } from 'vitest';
import { memoryStore, type SessionEvents, SessionManager } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import type { FakeAuthServer } from '../helpers/fake-as.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

const fixture = useFakeAuthServer();
let as: FakeAuthServer;
beforeEach(() => {
  as = fixture.as;
});
const options = fixture.options;

describe('manager.restore(): the restore-or-login idiom', () => {
  it('returns an active session, and undefined for none and for one that needs a new login', async () => {
    const manager = new SessionManager(options());
    expect(await manager.restore('u')).toBeUndefined();
    const response = as.issue({ expiresIn: 0 });
    await manager.adopt('u', response);
    expect((await manager.restore('u'))?.status).toBe('active');
    // Someone else used this refresh token: the next renewal is a replay, and the session ends.
    await new SessionManager(options({ store: memoryStore() })).login({
      grant: 'refresh_token',
      refreshToken: response.refresh_token as string,
    });
    expect((await rejection((await manager.get('u'))?.getAccessToken() as Promise<string>)).code).toBe(
      'TOKENKEEPER_REAUTH_REQUIRED',
    );
    // get() still returns it (to show why), restore() does not: the `??` then logs in again.
    expect((await manager.get('u'))?.status).toBe('reauth-required');
    expect(await manager.restore('u')).toBeUndefined();
    const again =
      (await manager.restore('u')) ??
      (await manager.login({ grant: 'password', username: 'alice', password: 'wonderland' }, { sessionId: 'u' }));
    expect(again.status).toBe('active');
    expect((await manager.restore('u'))?.status).toBe('active');
  });
});

describe("the 'warning' event TOKENKEEPER_NO_REFRESH_TOKEN", () => {
  it('is emitted when a login asked for offline_access and no refresh token came back', async () => {
    const manager = new SessionManager(options());
    const warnings: SessionEvents['warning'][] = [];
    manager.on('warning', (w) => warnings.push(w));
    // The fake server, like every server, issues no refresh token for client credentials.
    await manager.login({ grant: 'client_credentials', scope: 'read offline_access' }, { sessionId: 'svc' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ code: 'TOKENKEEPER_NO_REFRESH_TOKEN', sessionId: 'svc' });
    expect(warnings[0]?.message).toContain("prompt: 'consent'");
  });

  it('is not emitted when a refresh token came, nor when offline_access was not asked for', async () => {
    const manager = new SessionManager(options());
    const warnings: unknown[] = [];
    manager.on('warning', (w) => warnings.push(w));
    await manager.login({ grant: 'password', username: 'alice', password: 'wonderland', scope: 'offline_access' });
    await manager.login({ grant: 'client_credentials', scope: 'read' });
    expect(warnings).toEqual([]);
  });
});
