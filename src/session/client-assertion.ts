import type * as oauth from 'oauth4webapi';
import { toBase64Url } from '../codec/base64.js';
import { TokenkeeperError } from '../errors.js';

/**
 * JWT client authentication (RFC 7523): `private_key_jwt` and `client_secret_jwt`. Loaded with
 * `import()` by the clients that use them, so other apps (every browser app) do not ship it.
 *
 * The assertion is the one oauth4webapi would make (`iss` and `sub` the client id, `aud` the
 * issuer, a fresh `jti`, one minute of life), signed with Web Crypto.
 */

/** Signs with a private key: a `CryptoKey`, or a private JWK imported here as non-extractable. */
export async function privateKeyJwt(privateKey: CryptoKey | JsonWebKey, kid?: string): Promise<oauth.ClientAuth> {
  const key = privateKey instanceof CryptoKey ? privateKey : await importPrivateJwk(privateKey);
  const alg = jwsAlgorithm(key);
  const params = signParams(key);
  return assertion({ alg, ...(kid === undefined ? {} : { kid }) }, (data) => crypto.subtle.sign(params, key, data));
}

/** Signs with HMAC-SHA256 over the client secret. */
export async function clientSecretJwt(secret: string): Promise<oauth.ClientAuth> {
  const key = await crypto.subtle.importKey('raw', utf8(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return assertion({ alg: 'HS256' }, (data) => crypto.subtle.sign('HMAC', key, data));
}

function assertion(header: object, sign: (data: Uint8Array<ArrayBuffer>) => Promise<ArrayBuffer>): oauth.ClientAuth {
  return async (as, client, body) => {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      jti: toBase64Url(crypto.getRandomValues(new Uint8Array(32))),
      aud: as.issuer,
      exp: now + 60,
      iat: now,
      nbf: now,
      iss: client.client_id,
      sub: client.client_id,
    };
    const input = `${json(header)}.${json(payload)}`;
    const signature = new Uint8Array(await sign(utf8(input)));
    body.set('client_id', client.client_id);
    body.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    body.set('client_assertion', `${input}.${toBase64Url(signature)}`);
  };
}

/** The JWS `alg` of a Web Crypto signing key. */
function jwsAlgorithm(key: CryptoKey): string {
  const a = key.algorithm as Partial<RsaHashedKeyAlgorithm & EcKeyAlgorithm>;
  const bits = a.hash?.name.slice(4);
  if (a.name === 'ECDSA') {
    const curve = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[a.namedCurve as string];
    if (curve !== undefined) return curve;
  } else if (a.name === 'RSASSA-PKCS1-v1_5' && bits) return `RS${bits}`;
  else if (a.name === 'RSA-PSS' && bits) return `PS${bits}`;
  else if (a.name === 'Ed25519') return 'EdDSA';
  throw new TokenkeeperError(
    'TOKENKEEPER_INVALID_ARGUMENT',
    `client.privateKey is a ${String(a.name)} key, which cannot sign a client assertion: give an EC (P-256, P-384, P-521), RSA or Ed25519 key.`,
  );
}

/** The `crypto.subtle.sign` parameters of a key (`jwsAlgorithm` has accepted it). */
function signParams(key: CryptoKey): AlgorithmIdentifier | EcdsaParams | RsaPssParams {
  const a = key.algorithm as RsaHashedKeyAlgorithm & EcKeyAlgorithm;
  if (a.name === 'ECDSA')
    return { name: 'ECDSA', hash: `SHA-${a.namedCurve === 'P-521' ? 512 : a.namedCurve.slice(2)}` };
  if (a.name === 'RSA-PSS') return { name: 'RSA-PSS', saltLength: Number(a.hash.name.slice(4)) / 8 };
  return a.name;
}

/** The Web Crypto import parameters of each JWS algorithm a private JWK may declare. */
const JWK_ALGORITHMS: Record<string, RsaHashedImportParams | EcKeyImportParams | Algorithm> = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  ES384: { name: 'ECDSA', namedCurve: 'P-384' },
  ES512: { name: 'ECDSA', namedCurve: 'P-521' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  RS384: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
  RS512: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256' },
  PS384: { name: 'RSA-PSS', hash: 'SHA-384' },
  PS512: { name: 'RSA-PSS', hash: 'SHA-512' },
  EdDSA: { name: 'Ed25519' },
  Ed25519: { name: 'Ed25519' },
};

async function importPrivateJwk(jwk: JsonWebKey): Promise<CryptoKey> {
  const curves: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'EdDSA' };
  const alg = jwk.alg ?? (jwk.kty === 'RSA' ? 'RS256' : curves[jwk.crv as string]);
  const params = alg === undefined ? undefined : JWK_ALGORITHMS[alg];
  try {
    if (params === undefined) throw new Error(`unsupported algorithm ${String(alg ?? jwk.kty)}`);
    const { alg: _a, key_ops: _k, use: _u, ...bare } = jwk;
    return await crypto.subtle.importKey('jwk', bare, params, false, ['sign']);
  } catch (error) {
    // Never the key itself: only what kind of key it was.
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `client.privateKey (a ${String(jwk.kty)} JWK${alg ? ` for ${alg}` : ''}) could not be used to sign: ${
        (error as Error).message
      }. Give a private EC, RSA or Ed25519 JWK, with "alg" when it is not the default for its type.`,
    );
  }
}

function json(value: object): string {
  return toBase64Url(utf8(JSON.stringify(value)));
}

function utf8(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text);
}
