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
    const bind = (cookieOf(started, 'tk_session_bind') as string).split(';')[0] as string;
    const b = bind.split('=')[1]?.split('.')[0];
    const value = Buffer.from(JSON.stringify({ s: state, r: '/€', b })).toString('base64url');
    const mac = createHmac('sha256', KEY).update(`tk_session_login=${value}`).digest('base64url');
    const response = await a.callback(
      new Request(`${REDIRECT}?code=good-code&state=${state}`, {
        headers: { cookie: `tk_session_login=${value}.${mac}; ${bind}` },
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
    const cookie = started.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
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

describe('the login cookie is bound to the browser that began the login', () => {
  const begin = async (a: ReturnType<typeof auth>, cookie?: string) => {
    const started = await a.login(
      new Request('http://127.0.0.1/login', cookie === undefined ? {} : { headers: { cookie } }),
    );
    const state = new URL(started.headers.get('location') as string).searchParams.get('state') as string;
    const cookies = started.headers.getSetCookie().map((c) => c.split(';')[0] as string);
    return { state, cookies, started };
  };

  it('a login cookie of the attacker’s own, planted in the victim’s browser with the attacker’s callback, is refused: nothing redeemed or stored', async () => {
    // A cookie name without __Host-: one a sibling subdomain or a network attacker can plant.
    const a = auth(manager(), { cookie: { keys: [KEY], name: 'app_sid' } });
    const attacker = await begin(a);
    const attackerLogin = attacker.cookies.find((c) => c.startsWith('app_sid_login=')) as string;
    // The victim's browser has its own binding (it signed in here before), and the planted cookie.
    const victim = await begin(a);
    const victimBind = victim.cookies.find((c) => c.startsWith('app_sid_bind=')) as string;
    const before = fixture.as.counts.authorizationCode;
    const planted = await a.callback(
      new Request(`${REDIRECT}?code=good-code&state=${attacker.state}`, {
        headers: { cookie: `${attackerLogin}; ${victimBind}` },
      }),
    );
    expect(planted.status).toBe(400);
    expect(await planted.text()).toContain('did not start in this browser');
    // Without any binding cookie, too.
    const bare = await a.callback(
      new Request(`${REDIRECT}?code=good-code&state=${attacker.state}`, { headers: { cookie: attackerLogin } }),
    );
    expect(bare.status).toBe(400);
    expect(fixture.as.counts.authorizationCode).toBe(before);
    expect((await keysOf(fixture.store)).filter((k) => k.includes(':s:'))).toEqual([]);
    // The attacker's own browser, with both of its cookies, signs in.
    const own = await a.callback(
      new Request(`${REDIRECT}?code=good-code&state=${attacker.state}`, {
        headers: { cookie: attacker.cookies.join('; ') },
      }),
    );
    expect(own.status).toBe(302);
  });

  it('a browser keeps its binding across logins', async () => {
    const a = auth();
    const first = await begin(a);
    const bind = first.cookies.find((c) => c.startsWith('tk_session_bind=')) as string;
    const second = await begin(a, bind);
    expect(second.cookies.find((c) => c.startsWith('tk_session_bind='))).toBe(bind);
  });

  it('on https the cookies are __Host- by default (Secure, Path=/, no Domain); a __Host- name without Secure is refused', async () => {
    const a = webAuth(manager(), { redirectUri: 'https://app.example/auth/callback', cookie: { keys: [KEY] } });
    const { started } = await begin(a);
    const set = started.headers.getSetCookie();
    expect(set.map((c) => c.split('=')[0])).toEqual(['__Host-tk_session_login', '__Host-tk_session_bind']);
    for (const c of set) {
      expect(c).toContain('; Secure');
      expect(c).toContain('; Path=/;');
      expect(c).not.toMatch(/domain=/i);
    }
    // A custom name keeps its name; the binding is __Host- whenever Secure.
    const custom = webAuth(manager(), {
      redirectUri: 'https://app.example/auth/callback',
      cookie: { keys: [KEY], name: 'app_sid' },
    });
    expect((await begin(custom)).cookies.map((c) => c.split('=')[0])).toEqual(['app_sid_login', '__Host-app_sid_bind']);
    const error = thrown(() => auth(manager(), { cookie: { keys: [KEY], name: '__Host-sid' } }));
    expect(error).toMatchObject({ code: 'TOKENKEEPER_INVALID_ARGUMENT' });
    expect(error.message).toContain('__Host-');
  });
});
