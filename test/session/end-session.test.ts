import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore, SessionManager } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// session.endSessionUrl(): RP-initiated logout at oidc-provider, followed as a browser would
// (its confirmation form posted back), ending at the registered post-logout URI with the state.
let op: RealAuthServer;
beforeAll(async () => {
  op = await startRealAuthServer();
});
afterAll(() => op.close());
const fixture = useFakeAuthServer();

describe('session.endSessionUrl()', () => {
  it("is the server's end_session_endpoint, which accepts it and returns to post_logout_redirect_uri", async () => {
    const manager = new SessionManager({
      store: memoryStore(),
      issuer: op.issuer,
      client: { clientId: op.clientId, clientSecret: op.clientSecret },
    });
    const session = await manager.login({ grant: 'refresh_token', refreshToken: await op.mintRefreshToken('alice') });
    const url = new URL(
      await session.endSessionUrl({ postLogoutRedirectUri: 'http://127.0.0.1/signed-out', state: 'st-1' }),
    );
    expect(url.searchParams.get('client_id')).toBe(op.clientId);
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe('http://127.0.0.1/signed-out');
    expect(url.searchParams.has('id_token_hint')).toBe(false);
    await session.logout();
    // The server asks the user to confirm (no id_token_hint), then sends the browser back.
    const ask = await fetch(url, { redirect: 'manual' });
    expect(ask.status).toBe(200);
    const form = await ask.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(form)?.[1] as string;
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(form)?.[1] as string;
    expect(xsrf).toBeDefined();
    const cookie = ask.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const done = await fetch(new URL(action, op.issuer), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    expect(done.status).toBeGreaterThanOrEqual(300);
    expect(done.status).toBeLessThan(400);
    expect(done.headers.get('location')).toBe('http://127.0.0.1/signed-out?state=st-1');
  });

  it('refuses a server without an end_session_endpoint, and a relative redirect URI', async () => {
    const m = new SessionManager(fixture.options());
    const session = await m.adopt('u', fixture.as.issue());
    const err = await rejection(session.endSessionUrl());
    expect(err.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(err.message).toContain('names no end_session_endpoint');
    const op2 = new SessionManager({ store: memoryStore(), issuer: op.issuer, client: { clientId: op.clientId } });
    const s2 = await op2.adopt('v', { access_token: 'at', token_type: 'Bearer', expires_in: 60 });
    const bad = await rejection(s2.endSessionUrl({ postLogoutRedirectUri: '/signed-out' }));
    expect(bad.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(bad.message).toContain('postLogoutRedirectUri must be an absolute URL');
  });
});
