import { describe, expect, it } from 'vitest';
import { webAuth } from '../../src/exports/web.js';
import { SessionManager } from '../../src/index.js';
import { thrown } from '../helpers/errors.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// The neutral handlers on plain Web Requests: every refusal of bad input. The sign-in itself runs
// end to end in Chromium against oidc-provider in frameworks.browser.test.ts and web-app.browser.test.ts.
const fixture = useFakeAuthServer();
const KEY = 'a-cookie-key-of-at-least-32-characters!';
const app = 'http://127.0.0.1:8080';
const manager = () => new SessionManager(fixture.options({ authorizationEndpoint: `${fixture.as.issuer}/authorize` }));
const auth = (m = manager(), extra = {}) =>
  webAuth(m, { redirectUri: `${app}/auth/callback`, cookie: { keys: [KEY] }, ...extra });
const cookieOf = (response: Response, name: string) =>
  response.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));

describe('webAuth login', () => {
  it('redirects to the server with PKCE and sets a short-lived, signed, HttpOnly login cookie', async () => {
    const response = await auth().login(new Request(`${app}/auth/login?returnTo=/account?tab=1`));
    expect(response.status).toBe(302);
    const to = new URL(response.headers.get('location') as string);
    expect(to.searchParams.get('code_challenge_method')).toBe('S256');
    expect(to.searchParams.get('redirect_uri')).toBe(`${app}/auth/callback`);
    const login = cookieOf(response, 'tk_session_login') as string;
    expect(login).toMatch(/^tk_session_login=[\w-]+\.[\w-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600$/);
    expect(login).not.toContain('Secure'); // loopback over http: a development setup
  });

  it('refuses a returnTo that leaves the site: another origin, a scheme-relative or backslash path', async () => {
    const a = auth();
    for (const returnTo of [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      'javascript:alert(1)',
      'account',
    ]) {
      const response = await a.login(new Request(`${app}/auth/login?returnTo=${encodeURIComponent(returnTo)}`));
      expect(response.status, returnTo).toBe(400);
      expect(response.headers.get('location')).toBeNull();
    }
  });

  it('marks cookies Secure when the app is on https', async () => {
    const a = webAuth(manager(), { redirectUri: 'https://app.example/auth/callback', cookie: { keys: [KEY] } });
    const response = await a.login(new Request('https://app.example/auth/login'));
    expect(cookieOf(response, '__Host-tk_session_login')).toContain('; Secure'); // and __Host- by default
  });
});

describe('webAuth callback', () => {
  it('refuses a callback without the login cookie, or with the cookie of another login (login CSRF)', async () => {
    const a = auth();
    const started = await a.login(new Request(`${app}/auth/login`));
    const state = new URL(started.headers.get('location') as string).searchParams.get('state');
    const bare = await a.callback(new Request(`${app}/auth/callback?code=c&state=${state}`));
    expect(bare.status).toBe(400);
    expect(await bare.text()).toContain('did not start in this browser');
    const cookie = (cookieOf(started, 'tk_session_login') as string).split(';')[0] as string;
    const other = await a.callback(
      new Request(`${app}/auth/callback?code=c&state=another-state`, { headers: { cookie } }),
    );
    expect(other.status).toBe(400);
    expect(cookieOf(other, 'tk_session_login')).toContain('Max-Age=0'); // the login is over
    // A login cookie whose signature is not ours.
    const forged = cookie.replace(/\.[\w-]+$/, '.AAAA');
    const tampered = await a.callback(
      new Request(`${app}/auth/callback?code=c&state=${state}`, { headers: { cookie: forged } }),
    );
    expect(tampered.status).toBe(400);
  });
});

describe('webAuth logout', () => {
  it('takes a POST from the site only: GET is 405, another origin or a cross-site fetch 403', async () => {
    const a = auth();
    const get = await a.logout(new Request(`${app}/auth/logout`));
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const cross = await a.logout(
      new Request(`${app}/auth/logout`, { method: 'POST', headers: { origin: 'https://evil.example' } }),
    );
    expect(cross.status).toBe(403);
    const noOrigin = await a.logout(
      new Request(`${app}/auth/logout`, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } }),
    );
    expect(noOrigin.status).toBe(403);
    const ok = await a.logout(new Request(`${app}/auth/logout`, { method: 'POST', headers: { origin: app } }));
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/');
    expect(cookieOf(ok, 'tk_session')).toMatch(/^tk_session=; .*Max-Age=0$/);
  });
});

describe('webAuth sessionFor', () => {
  it('is undefined without a cookie, for an unsigned or malformed one, and for one of an unknown session', async () => {
    const a = auth();
    const ask = (cookie?: string) =>
      a.sessionFor(new Request(`${app}/`, cookie === undefined ? {} : { headers: { cookie } }));
    expect(await ask()).toBeUndefined();
    expect(await ask('tk_session=abc')).toBeUndefined();
    expect(await ask('tk_session=.')).toBeUndefined();
    expect(await ask(`tk_session=${'a'.repeat(43)}.${'b'.repeat(43)}`)).toBeUndefined();
  });
});

describe('webAuth options', () => {
  it('refuses short or missing keys, an http redirectUri off loopback, and off-site default paths', () => {
    const m = manager();
    const make = (o: object) => () =>
      webAuth(m, { redirectUri: `${app}/auth/callback`, cookie: { keys: [KEY] }, ...o });
    expect(thrown(make({ cookie: { keys: ['short'] } })).message).toContain('32 characters');
    expect(thrown(make({ cookie: { keys: [] } })).message).toContain('cookie.keys');
    expect(thrown(make({ redirectUri: 'http://app.example/auth/callback' })).message).toContain('https');
    expect(thrown(make({ afterLogout: 'https://evil.example' })).message).toContain('afterLogout');
    expect(thrown(make({ cookie: { keys: [KEY], name: 'a b' } })).message).toContain('cookie.name');
  });
});
