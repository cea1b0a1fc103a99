import { TokenkeeperError } from '../errors.js';

/**
 * The `dpop` option of a manager, checked when the manager is made; the key machinery
 * (`dpop.ts`) is loaded on first use, so apps without DPoP do not ship it.
 */

/** The algorithms a session key can use. */
export type DpopAlgorithm = 'ES256' | 'EdDSA' | 'RS256';

export interface DpopOptions {
  /** The algorithm of new session keys (default ES256). */
  algorithm?: DpopAlgorithm;
  /**
   * One key pair of your own for every session (its public key extractable): then no key is
   * stored, and every process must be given the same pair.
   */
  keyPair?: CryptoKeyPair;
  /**
   * Accept tokens a server issued as `Bearer` although a proof was sent (a server that does not
   * do DPoP). Default false: such an answer is a `TOKENKEEPER_DPOP` error.
   */
  allowBearer?: boolean;
}

/** How a session's key is kept, in its record (`dpop`): never the key itself outside `jwk`. */
export interface DpopRecord {
  alg: DpopAlgorithm;
  /** The public key's JWK thumbprint (RFC 7638): the key the tokens are bound to. */
  jkt: string;
  /** The private key (with its public part) as a JWK: server stores, always encrypted. */
  jwk?: JsonWebKey;
  /** Where the key lives when not in `jwk`: IndexedDB (a browser's non-extractable key) or the manager's own pair. */
  ref?: 'idb' | 'given';
}

/** Signs proofs for one session, and learns servers' nonces. */
export interface DpopSigner {
  readonly jkt: string;
  /** Whether a `Bearer` answer to a request with a proof is accepted (`DpopOptions.allowBearer`). */
  readonly allowBearer: boolean;
  /** A proof for a request (`ath` when an access token is sent). */
  proof(htm: string, url: string | URL, accessToken?: string): Promise<string>;
  /** Keeps a `DPoP-Nonce` the server sent. */
  learn(response: Response, url: string | URL): void;
}

/** The `dpop` option, checked. */
export interface CheckedDpop {
  alg: DpopAlgorithm;
  /** Where new sessions keep their keys: the record (encrypted), IndexedDB, or nowhere (the manager's pair). */
  mode: 'jwk' | 'idb' | 'given';
  given?: CryptoKeyPair;
  allowBearer: boolean;
}

const ALGORITHMS = ['ES256', 'EdDSA', 'RS256'];

export function checkDpop(option: true | DpopAlgorithm | DpopOptions, encrypted: boolean): CheckedDpop {
  const o: DpopOptions = option === true ? {} : typeof option === 'string' ? { algorithm: option } : option;
  const fail = (why: string) => new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', `dpop: ${why}.`);
  if (typeof o !== 'object' || o === null) throw fail('give true, an algorithm (ES256, EdDSA, RS256) or options');
  const alg = o.algorithm ?? 'ES256';
  if (!ALGORITHMS.includes(alg)) throw fail(`algorithm must be ES256, EdDSA or RS256, got ${String(alg)}`);
  const allowBearer = o.allowBearer === true;
  if (o.keyPair !== undefined) {
    const { privateKey, publicKey } = o.keyPair;
    if (
      !(privateKey instanceof CryptoKey) ||
      privateKey.type !== 'private' ||
      !(publicKey instanceof CryptoKey) ||
      publicKey.type !== 'public'
    ) {
      throw fail('keyPair must be a CryptoKeyPair');
    }
    if (!publicKey.extractable) throw fail('keyPair.publicKey must be extractable (it is sent in every proof)');
    const given = algorithmOf(privateKey);
    if (given === undefined) {
      throw fail(
        `keyPair is a ${privateKey.algorithm.name} key; DPoP keys are ECDSA P-256 (ES256), Ed25519 (EdDSA) or RSASSA-PKCS1-v1_5 SHA-256 (RS256)`,
      );
    }
    return { alg: given, mode: 'given', given: o.keyPair, allowBearer };
  }
  if (encrypted) return { alg, mode: 'jwk', allowBearer };
  if (typeof indexedDB !== 'undefined' && typeof window !== 'undefined') return { alg, mode: 'idb', allowBearer };
  throw fail(
    "each session's private key is stored with the session, so the store must be encrypted: give the manager an encryption option (or your own keyPair, or run in a browser, where IndexedDB keeps the key non-extractable)",
  );
}

/** The JWS algorithm of a Web Crypto key, if it is one DPoP keys may use. */
export function algorithmOf(key: CryptoKey): DpopAlgorithm | undefined {
  const a = key.algorithm as EcKeyAlgorithm & RsaHashedKeyAlgorithm;
  if (a.name === 'ECDSA' && a.namedCurve === 'P-256') return 'ES256';
  if (a.name === 'Ed25519') return 'EdDSA';
  if (a.name === 'RSASSA-PKCS1-v1_5' && a.hash?.name === 'SHA-256') return 'RS256';
  return undefined;
}
