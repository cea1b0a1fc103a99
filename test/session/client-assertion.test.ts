import { generateKeyPairSync } from 'node:crypto';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import type * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import { SessionManager } from '../../src/index.js';
import { clientSecretJwt, privateKeyJwt } from '../../src/session/client-assertion.js';
import { rejection } from '../helpers/errors.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

// The JWT client authentication tokenkeeper signs itself (RFC 7523). oidc-provider accepts it
// end to end in login-flows.browser.test.ts; here every key type's assertion is verified.
const as = { issuer: 'https://as.example' } as oauth.AuthorizationServer;
const client = { client_id: 'client-1' } as oauth.Client;

async function assertionOf(auth: oauth.ClientAuth): Promise<{ jwt: string; body: URLSearchParams }> {
  const body = new URLSearchParams();
  await auth(as, client, body, new Headers());
  expect(body.get('client_id')).toBe('client-1');
  expect(body.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
  return { jwt: body.get('client_assertion') ?? '', body };
}

function expectClaims(payload: Record<string, unknown>): void {
  expect(payload).toMatchObject({ iss: 'client-1', sub: 'client-1', aud: 'https://as.example' });
  expect(payload.exp).toBe((payload.iat as number) + 60);
  expect(payload.jti).toMatch(/^[\w-]{43}$/);
}

describe('private_key_jwt and client_secret_jwt assertions', () => {
  const keys = [
    ['ES256', 'ec', { namedCurve: 'P-256' }],
    ['ES384', 'ec', { namedCurve: 'P-384' }],
    ['ES512', 'ec', { namedCurve: 'P-521' }],
    ['RS256', 'rsa', { modulusLength: 2048 }],
    ['PS256', 'rsa', { modulusLength: 2048 }],
    ['EdDSA', 'ed25519', {}],
  ] as const;

  for (const [alg, type, params] of keys) {
    it(`signs with a private ${alg} JWK, verifiable with its public key`, async () => {
      const pair = generateKeyPairSync(type as 'ec', params as { namedCurve: string });
      const jwk = { ...pair.privateKey.export({ format: 'jwk' }), ...(alg === 'PS256' ? { alg } : {}) };
      const { jwt } = await assertionOf(await privateKeyJwt(jwk as JsonWebKey, 'key-1'));
      expect(decodeProtectedHeader(jwt)).toEqual({ alg, kid: 'key-1' });
      const publicKey = await importJWK(pair.publicKey.export({ format: 'jwk' }) as JsonWebKey, alg);
      expectClaims((await jwtVerify(jwt, publicKey)).payload);
    });
  }

  it('signs with a CryptoKey, without a kid when none is given', async () => {
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    const { jwt } = await assertionOf(await privateKeyJwt(pair.privateKey));
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'ES256' });
    expectClaims((await jwtVerify(jwt, pair.publicKey)).payload);
  });

  it('client_secret_jwt: HS256 over the secret; each assertion has its own jti', async () => {
    const auth = await clientSecretJwt('s3cret-of-the-client');
    const a = await assertionOf(auth);
    const b = await assertionOf(auth);
    expect(decodeProtectedHeader(a.jwt)).toEqual({ alg: 'HS256' });
    const { payload } = await jwtVerify(a.jwt, new TextEncoder().encode('s3cret-of-the-client'));
    expectClaims(payload);
    expect((await jwtVerify(b.jwt, new TextEncoder().encode('s3cret-of-the-client'))).payload.jti).not.toBe(
      payload.jti,
    );
    expect(a.body.has('client_secret')).toBe(false);
  });
});

describe('private keys that cannot sign an assertion', () => {
  const fixture = useFakeAuthServer();

  it('refuses a private CryptoKey of an algorithm that does not sign (ECDH, RSA-OAEP) at the first request', async () => {
    const ecdh = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    const oaep = await crypto.subtle.generateKey(
      { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      false,
      ['decrypt', 'encrypt'],
    );
    for (const [key, expected] of [
      [ecdh.privateKey, 'is a ECDH key, which cannot sign a client assertion'],
      [oaep.privateKey, 'is a RSA-OAEP key, which cannot sign a client assertion'],
    ] as const) {
      const m = new SessionManager({ ...fixture.options(), client: { clientId: 'c', privateKey: key } });
      const err = await rejection(m.login({ grant: 'client_credentials' }));
      expect(err.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
      expect(err.message).toContain(expected);
    }
    expect(fixture.as.counts.received).toBe(0);
  });
});
