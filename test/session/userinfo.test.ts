import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore, SessionManager } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// session.userinfo() against oidc-provider's own userinfo endpoint (found by discovery).
let op: RealAuthServer;
beforeAll(async () => {
  op = await startRealAuthServer();
});
afterAll(() => op.close());
const manager = () =>
  new SessionManager({
    store: memoryStore(),
    issuer: op.issuer,
    client: { clientId: op.clientId, clientSecret: op.clientSecret },
  });
const fixture = useFakeAuthServer();

describe('session.userinfo()', () => {
  it("answers the signed-in user's claims, asked with the session's token", async () => {
    const m = manager();
    const session = await m.login({ grant: 'refresh_token', refreshToken: await op.mintRefreshToken('alice') });
    const claims = await session.userinfo();
    expect(claims.sub).toBe('alice');
  });

  it('fails with TOKENKEEPER_USERINFO when the server refuses the token (no openid scope)', async () => {
    const m = manager();
    const session = await m.login({ grant: 'client_credentials', scope: 'api:read' });
    const err = await rejection(session.userinfo());
    expect(err.code).toBe('TOKENKEEPER_USERINFO');
    expect(err.message).toMatch(/The userinfo endpoint answered 40[13] \(does the session have the openid scope\?\)/);
    expect(err.message).not.toContain(session.tokens.accessToken);
  });

  it('fails with TOKENKEEPER_INVALID_ARGUMENT when the server names no userinfo endpoint', async () => {
    const m = new SessionManager(fixture.options());
    const session = await m.adopt('u', fixture.as.issue());
    const err = await rejection(session.userinfo());
    expect(err.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(err.message).toContain('names no userinfo_endpoint');
  });
});
