import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isTokenkeeperError, TokenSet } from '../src/index.js';

const response = {
  access_token: 'AT-secret-123',
  token_type: 'bearer',
  expires_in: 3600,
  refresh_token: 'RT-secret-456',
  scope: 'read write',
  id_token: 'IDT-secret-789',
  ref: { type: 'app', id: 42 },
};

describe('TokenSet', () => {
  it('turns expires_in into an absolute expiry and keeps extra fields', () => {
    const t = TokenSet.fromResponse(response, 1_000_000);
    expect(t.accessToken).toBe('AT-secret-123');
    expect(t.refreshToken).toBe('RT-secret-456');
    expect(t.idToken).toBe('IDT-secret-789');
    expect(t.expiresAt).toBe(1_000_000 + 3_600_000);
    expect(t.scope).toBe('read write');
    expect(t.extra).toEqual({ ref: { type: 'app', id: 42 } });
    expect(t.authorizationHeader()).toBe('Bearer AT-secret-123');
    expect(t.expiresIn(1_000_000)).toBe(3600);
  });

  it('accepts expires_in as a numeric string and defaults the token type', () => {
    const t = TokenSet.fromResponse({ access_token: 'a', expires_in: '60' }, 0);
    expect(t.expiresAt).toBe(60_000);
    expect(t.tokenType).toBe('Bearer');
  });

  it('knows when it is expired, with skew', () => {
    const t = TokenSet.fromResponse({ access_token: 'a', expires_in: 100 }, 0);
    expect(t.isExpired(0, 99_999)).toBe(false);
    expect(t.isExpired(0, 100_000)).toBe(true);
    expect(t.isExpired(10_000, 90_000)).toBe(true);
    expect(t.isExpired(10_000, 89_999)).toBe(false);
    expect(TokenSet.fromResponse({ access_token: 'a' }).isExpired(60_000)).toBe(false);
  });

  it('round-trips through JSON via toStorable', () => {
    const t = TokenSet.fromResponse(response, 5);
    const back = TokenSet.fromStorable(JSON.parse(JSON.stringify(t.toStorable())));
    expect(back.toStorable()).toEqual(t.toStorable());
    expect(back.refreshToken).toBe('RT-secret-456');
    expect(back.extra).toEqual({ ref: { type: 'app', id: 42 } });
  });

  it('never shows a token in JSON, toString, inspect, or console formatting', () => {
    const t = TokenSet.fromResponse(response);
    const views = [
      JSON.stringify(t),
      String(t),
      `${t}`,
      inspect(t),
      inspect({ nested: t }, { depth: 5 }),
      inspect(t, { showHidden: true }),
    ];
    for (const view of views) {
      expect(view).not.toContain('secret');
    }
    expect(JSON.stringify(t)).toContain('[redacted]');
    expect(Object.keys(t)).not.toContain('accessToken');
  });

  it('is immutable', () => {
    const t = TokenSet.fromResponse(response);
    expect(() => {
      (t as unknown as { scope: string }).scope = 'admin';
    }).toThrow();
    const changed = t.with({ scope: 'admin' });
    expect(changed.scope).toBe('admin');
    expect(t.scope).toBe('read write');
  });

  const bad: [string, unknown, RegExp][] = [
    ['no access_token', { token_type: 'bearer' }, /no access_token/],
    ['an empty access_token', { access_token: '' }, /no access_token/],
    ['a numeric access_token', { access_token: 5 }, /no access_token/],
    ['a negative expires_in', { access_token: 'a', expires_in: -1 }, /expires_in/],
    ['a non-numeric expires_in', { access_token: 'a', expires_in: 'soon' }, /expires_in/],
    ['an infinite expires_in', { access_token: 'a', expires_in: Number.POSITIVE_INFINITY }, /expires_in/],
    ['a refresh_token that is not a string', { access_token: 'a', refresh_token: 42 }, /refresh_token/],
    ['null', null, /not an object/],
    ['a string', 'access_token=a', /not an object/],
  ];
  for (const [label, input, message] of bad) {
    it(`refuses a response with ${label}`, () => {
      let err: unknown;
      try {
        TokenSet.fromResponse(input);
      } catch (e) {
        err = e;
      }
      expect(isTokenkeeperError(err, 'TOKENKEEPER_INVALID_TOKEN_RESPONSE')).toBe(true);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('refuses a storable form that was edited by hand', () => {
    for (const bad of [null, {}, { accessToken: 'a' }, { accessToken: 'a', tokenType: 'Bearer', expiresAt: 'x' }]) {
      expect(() => TokenSet.fromStorable(bad)).toThrow(/not in the format/);
    }
  });
});
