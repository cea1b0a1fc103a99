// Property tests (fast-check) for the encodings a key or record goes through: each must round-trip
// and never let two different inputs meet.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSession, encodeSession, type SessionRecord } from '../src/session/record.js';
import { decodeStem, encodeKey, escapeKey } from '../src/store/file/names.js';
import { assertValidKey, dropInKey } from '../src/store/kit/keys.js';
import { escapeGlob } from '../src/store/redis/index.js';
import { TokenSet } from '../src/token/token-set.js';

/** Strings a store accepts as keys: no NUL, no lone surrogates, 1 to 1,024 UTF-16 units. */
const storeKey = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }).filter((k) => {
  try {
    assertValidKey(k);
    return true;
  } catch {
    return false;
  }
});

describe('file names of keys', () => {
  it('round-trip: every key decodes back from its file name (or is hashed and kept in the file)', () => {
    fc.assert(
      fc.property(storeKey, (key) => {
        const stem = encodeKey(key);
        if (stem.startsWith('~')) expect(stem).toMatch(/^~[0-9a-f]{64}$/);
        else expect(decodeStem(stem)).toBe(key);
      }),
    );
  });

  it('are injective, case-insensitively too, and never a path', () => {
    fc.assert(
      fc.property(storeKey, storeKey, (a, b) => {
        const [sa, sb] = [encodeKey(a), encodeKey(b)];
        for (const s of [sa, sb]) {
          expect(s).not.toMatch(/[/\\]|^\./);
          expect(s.length).toBeLessThanOrEqual(200);
        }
        if (a !== b) expect(sa.toLowerCase()).not.toBe(sb.toLowerCase());
      }),
    );
  });

  it('a prefix listing matches exactly the keys with that prefix', () => {
    fc.assert(
      fc.property(storeKey, storeKey, (prefix, key) => {
        const stem = encodeKey(key);
        if (stem.startsWith('~')) return;
        expect(stem.startsWith(escapeKey(prefix))).toBe(key.startsWith(prefix));
      }),
    );
  });
});

describe('Redis SCAN patterns', () => {
  it('escape every glob character: the pattern matches the literal text', () => {
    const globMatch = (pattern: string, text: string) => {
      // Redis glob with only escapes and literal characters: unescape and compare.
      let out = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i] as string;
        if (c === '\\') out += pattern[++i];
        else if ('*?[]^'.includes(c))
          return false; // an unescaped glob character would widen a match
        else out += c;
      }
      return out === text;
    };
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        expect(globMatch(escapeGlob(text), text)).toBe(true);
      }),
    );
  });
});

describe('drop-in keys', () => {
  it('never meet: different segments give different keys', () => {
    const segment = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(
        fc.constantFrom('a', 'u', 't'),
        fc.array(segment, { minLength: 1, maxLength: 3 }),
        fc.constantFrom('a', 'u', 't'),
        fc.array(segment, { minLength: 1, maxLength: 3 }),
        (k1, s1, k2, s2) => {
          const same = k1 === k2 && s1.length === s2.length && s1.every((s, i) => s === s2[i]);
          expect(dropInKey('ns', k1, ...s1) === dropInKey('ns', k2, ...s2)).toBe(same);
        },
      ),
    );
  });
});

describe('session records', () => {
  const tokens = fc.record(
    {
      access_token: fc.string({ minLength: 1, maxLength: 50 }),
      token_type: fc.constantFrom('Bearer', 'DPoP', 'bearer'),
      expires_in: fc.oneof(fc.nat({ max: 10 ** 9 }), fc.constant(1e13)),
      refresh_token: fc.string({ minLength: 1, maxLength: 50 }),
      scope: fc.string({ maxLength: 30 }),
    },
    { requiredKeys: ['access_token'] },
  );
  const record = fc.record(
    {
      tokens,
      grant: fc.constantFrom('password', 'client_credentials', 'adopt'),
      renewBy: fc.constantFrom('refresh_token', 'client_credentials', 'none'),
      status: fc.constantFrom('active', 'reauth-required'),
      createdAt: fc.nat(),
      updatedAt: fc.nat(),
      scope: fc.string({ maxLength: 20 }),
      reason: fc.string({ maxLength: 20 }),
      renewing: fc.record({ by: fc.string({ minLength: 1, maxLength: 32 }), at: fc.nat() }),
      issuer: fc.webUrl(),
      clientId: fc.string({ minLength: 1, maxLength: 20 }),
      endsAt: fc.nat(),
      idleTtlMs: fc.nat(),
      renewedAt: fc.nat(),
    },
    { requiredKeys: ['tokens', 'grant', 'renewBy', 'status', 'createdAt', 'updatedAt'] },
  );

  it('round-trip through encode and decode, via JSON as every store keeps them', () => {
    fc.assert(
      fc.property(record, (r) => {
        const rec = { ...r, tokens: TokenSet.fromResponse(r.tokens, 1_000) } as SessionRecord;
        const back = decodeSession('k', JSON.parse(JSON.stringify(encodeSession(rec))));
        expect(back.tokens.toStorable()).toEqual(rec.tokens.toStorable());
        expect({ ...back, tokens: undefined }).toEqual({ ...rec, tokens: undefined });
        expect(() => [String(back.tokens), JSON.stringify(back.tokens)]).not.toThrow();
      }),
    );
  });

  it('a reader accepts unknown optional fields (a newer writer in a rolling deploy)', () => {
    fc.assert(
      fc.property(
        record,
        fc.dictionary(
          fc.string({ minLength: 1 }).map((k) => `x_${k}`),
          fc.jsonValue(),
        ),
        (r, extra) => {
          const rec = { ...r, tokens: TokenSet.fromResponse(r.tokens, 1_000) } as SessionRecord;
          const stored = { ...JSON.parse(JSON.stringify(encodeSession(rec))), ...JSON.parse(JSON.stringify(extra)) };
          expect(decodeSession('k', stored).grant).toBe(rec.grant);
        },
      ),
    );
  });
});
