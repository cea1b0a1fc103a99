import { beforeEach, describe, expect, it } from 'vitest';
import { type DevicePrompt, SessionManager } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import type { FakeAuthServer } from '../helpers/fake-as.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// The device flow's errors and timing on cue, against the strict fake server; the whole flow
// with a browser entering the code runs against oidc-provider in login-flows.browser.test.ts.
const fixture = useFakeAuthServer();
let as: FakeAuthServer;
beforeEach(() => {
  as = fixture.as;
  as.device = { interval: 1, expiresIn: 600, answers: ['ok'] };
  as.devicePolls.length = 0;
});
const manager = () => new SessionManager(fixture.options({ deviceAuthorizationEndpoint: as.deviceEndpoint }));

describe('device authorization grant (RFC 8628)', () => {
  it('prompts once, polls at the server interval through authorization_pending, and stores the session', async () => {
    as.device.answers = ['authorization_pending', 'authorization_pending', 'ok'];
    const prompts: DevicePrompt[] = [];
    const started = Date.now();
    const session = await manager().login({
      grant: 'device_code',
      scope: 'read',
      onPrompt: (p) => void prompts.push(p),
    });
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toMatchObject({
      userCode: 'WDJB-MJHT',
      verificationUri: `${as.issuer}/activate`,
      verificationUriComplete: `${as.issuer}/activate?user_code=WDJB-MJHT`,
    });
    expect(prompts[0]?.expiresAt.getTime()).toBeGreaterThan(started + 590_000);
    expect(as.devicePolls).toHaveLength(3);
    for (let i = 1; i < 3; i++) {
      expect((as.devicePolls[i] as number) - (as.devicePolls[i - 1] as number)).toBeGreaterThanOrEqual(950);
    }
    expect(session.id).toBe('device_code');
    expect(session.grant).toBe('device_code');
    expect(as.isActive(await session.getAccessToken())).toBe(true);
  });

  it('slows down by 5 s on slow_down', async () => {
    as.device.answers = ['slow_down', 'ok'];
    await manager().login({ grant: 'device_code', onPrompt: () => {} });
    const [first, second] = as.devicePolls as [number, number];
    expect(second - first).toBeGreaterThanOrEqual(5_950);
  }, 20_000);

  it('fails with INVALID_GRANT on expired_token, and ACCESS_DENIED when the user refuses', async () => {
    as.device.answers = ['authorization_pending', 'expired_token'];
    const expired = await rejection(manager().login({ grant: 'device_code', onPrompt: () => {} }));
    expect(expired.code).toBe('TOKENKEEPER_INVALID_GRANT');
    expect(expired.message).toContain('expired');
    as.devicePolls.length = 0;
    as.resetCounts();
    as.device.answers = ['access_denied'];
    const denied = await rejection(manager().login({ grant: 'device_code', onPrompt: () => {} }));
    expect(denied.code).toBe('TOKENKEEPER_ACCESS_DENIED');
    expect(as.devicePolls).toHaveLength(1);
  });

  it('stops polling once the code has expired, even when the server never says so', async () => {
    as.device = { interval: 1, expiresIn: 2, answers: ['authorization_pending'] };
    const err = await rejection(manager().login({ grant: 'device_code', onPrompt: () => {} }));
    expect(err.code).toBe('TOKENKEEPER_INVALID_GRANT');
    expect(as.devicePolls.length).toBeLessThanOrEqual(3);
  });

  it('sends no poll after expires_in, and fails at the expiry with a typed error', async () => {
    as.device = { interval: 1, expiresIn: 3, answers: ['authorization_pending'] };
    const started = Date.now();
    const err = await rejection(manager().login({ grant: 'device_code', onPrompt: () => {} }));
    const failedAt = Date.now();
    expect(err.code).toBe('TOKENKEEPER_INVALID_GRANT');
    expect(err.message).toContain('expires_in');
    expect(as.devicePolls.length).toBeGreaterThanOrEqual(1);
    for (const at of as.devicePolls) expect(at).toBeLessThan(started + 3_000);
    expect(failedAt).toBeGreaterThanOrEqual(started + 2_900);
    expect(failedAt).toBeLessThan(started + 4_000);
  });

  it('refuses a verification_uri that is not https (or loopback http) before the user sees it', async () => {
    for (const uri of [
      'javascript:alert(1)',
      'data:text/html,<h1>log in</h1>',
      'http://evil.example/activate',
      'not a url',
    ]) {
      as.device.verificationUri = uri;
      as.devicePolls.length = 0;
      const prompts: DevicePrompt[] = [];
      const err = await rejection(manager().login({ grant: 'device_code', onPrompt: (p) => void prompts.push(p) }));
      expect(err.code).toBe('TOKENKEEPER_INVALID_TOKEN_RESPONSE');
      expect(err.message).toContain('verification_uri');
      expect(err.message).not.toContain('alert');
      expect(prompts).toHaveLength(0);
      expect(as.devicePolls).toHaveLength(0);
    }
    as.device.verificationUri = 'https://auth.example.com/activate';
    const prompts: DevicePrompt[] = [];
    await manager().login({ grant: 'device_code', onPrompt: (p) => void prompts.push(p) });
    expect(prompts[0]?.verificationUri).toBe('https://auth.example.com/activate');
  });

  it('stops at once when aborted, and polls no more', async () => {
    as.device.answers = ['authorization_pending'];
    const controller = new AbortController();
    const login = manager().login({
      grant: 'device_code',
      signal: controller.signal,
      onPrompt: () => {
        setTimeout(() => controller.abort(), 1_500);
      },
    });
    const err = await rejection(login);
    expect(err.code).toBe('TOKENKEEPER_LOGIN_ABORTED');
    const polls = as.devicePolls.length;
    expect(polls).toBe(1);
    await new Promise((r) => setTimeout(r, 1_200));
    expect(as.devicePolls.length).toBe(polls);
  });

  it('refuses a grant without onPrompt, and a server without a device endpoint, before asking anything', async () => {
    const missing = await rejection(manager().login({ grant: 'device_code' } as never));
    expect(missing.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(missing.message).toContain('onPrompt');
    const noEndpoint = new SessionManager(fixture.options());
    const err = await rejection(noEndpoint.login({ grant: 'device_code', onPrompt: () => {} }));
    expect(err.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(err.message).toContain('deviceAuthorizationEndpoint');
    expect(as.devicePolls).toHaveLength(0);
  });

  it('discovers the device endpoint from the server metadata', async () => {
    const m = new SessionManager({ ...fixture.options(), tokenEndpoint: undefined, issuer: as.issuer });
    const session = await m.login({ grant: 'device_code', onPrompt: () => {} }, { sessionId: 'tv' });
    expect(session.id).toBe('tv');
  });
});
