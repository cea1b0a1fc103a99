import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { webAuth } from '../../src/exports/web.js';
import { SessionManager, type Store } from '../../src/index.js';
import { thrown } from '../helpers/errors.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// The web sign-in under attack, on plain Web Requests: hostile returnTo values, hostile error
// answers. (Open redirects, login CSRF, cookie tampering and logout CSRF: web-auth.test.ts.)

const fixture = useFakeAuthServer();
const KEY = 'a-cookie-key-of-at-least-32-characters!';
// The fake server redeems `good-code` for this redirect URI only.
const REDIRECT = 'http://127.0.0.1/callback';
const manager = () => new SessionManager(fixture.options({ authorizationEndpoint: `${fixture.as.issuer}/authorize` }));
const auth = (m = manager(), extra = {}) =>
  webAuth(m, { redirectUri: REDIRECT, scope: 'offline_access', cookie: { keys: [KEY] }, ...extra });
const cookieOf = (response: Response, name: string) =>
  response.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));

async function keysOf(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const k of store.keys()) out.push(k);
  return out;
}

describe('returnTo: only what a Location header carries as it is', () => {
  const hostile = ['/€', '/。evil.example', '/a\u007fb', '/a b', '/a\tb', '/a\u0085b', '/\u2028', '/ok\\..\\'];

  it('refuses non-ASCII, spaces, control characters and DEL at login, before anything is stored', async () => {
    const a = auth();
    for (const returnTo of hostile) {
      const response = await a.login(new Request(`http://127.0.0.1/login?returnTo=${encodeURIComponent(returnTo)}`));
      expect(response.status, JSON.stringify(returnTo)).toBe(400);
      expect(response.headers.get('location')).toBeNull();
      expect(cookieOf(response, 'tk_session_login')).toBeUndefined();
    }
    expect(await keysOf(fixture.store)).toEqual([]); // no pending login kept
    // Percent-encoded, the same path is fine.
    const fine = await a.login(new Request(`http://127.0.0.1/login?returnTo=${encodeURIComponent('/%E2%82%AC')}`));
    expect(fine.status).toBe(302);
  });

  it('refuses them as defaultReturnTo and afterLogout with a typed error', () => {
    for (const path of hostile) {
      const error = thrown(() => auth(manager(), { defaultReturnTo: path }));
      expect(error).toMatchObject({ code: 'TOKENKEEPER_INVALID_ARGUMENT' });
      expect(error.message).toContain('defaultReturnTo must be a path on this site');
      expect(thrown(() => auth(manager(), { afterLogout: path })).message).toContain('afterLogout');
    }
  });

  it('a login cookie of an older version carrying one: the user lands on defaultReturnTo, signed in, nothing orphaned', async () => {
    const m = manager();
    const a = auth(m);
    const started = await a.login(new Request('http://127.0.0.1/login'));
    const state = new URL(started.headers.get('location') as string).searchParams.get('state') as string;
    // What an older version signed: the same cookie with returnTo /€.
    const value = Buffer.from(JSON.stringify({ s: state, r: '/€' })).toString('base64url');
    const mac = createHmac('sha256', KEY).update(`tk_session_login=${value}`).digest('base64url');
    const response = await a.callback(
      new Request(`${REDIRECT}?code=good-code&state=${state}`, {
        headers: { cookie: `tk_session_login=${value}.${mac}` },
      }),
    );
    expect(response.status, await response.clone().text()).toBe(302);
    expect(response.headers.get('location')).toBe('/');
    const id = (cookieOf(response, 'tk_session') as string).split('=')[1]?.split('.')[0] as string;
    expect(await m.get(id)).toBeDefined();
  });
});

describe('a hostile error answer', () => {
  it('is a fixed, escaped page under a CSP that loads nothing: the server’s description is not shown', async () => {
    const a = auth(manager(), { onError: () => {} });
    const started = await a.login(new Request('http://127.0.0.1/login'));
    const state = new URL(started.headers.get('location') as string).searchParams.get('state') as string;
    const cookie = (cookieOf(started, 'tk_session_login') as string).split(';')[0] as string;
    const description = '<script>alert(document.cookie)</script><img src=x onerror=alert(1)>';
    const response = await a.callback(
      new Request(
        `${REDIRECT}?error=access_denied&error_description=${encodeURIComponent(description)}&state=${state}`,
        { headers: { cookie } },
      ),
    );
    expect(response.status).toBe(403);
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'");
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await response.text();
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('alert');
    expect(html).toContain('declined');
  });
});
