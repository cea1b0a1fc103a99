import { toBase64Url } from '../codec/base64.js';
import { TokenkeeperError } from '../errors.js';
import { algorithmOf, type CheckedDpop, type DpopAlgorithm, type DpopRecord, type DpopSigner } from './dpop-options.js';

export type { DpopAlgorithm, DpopOptions, DpopRecord, DpopSigner } from './dpop-options.js';

/**
 * DPoP (RFC 9449): sender-constrained tokens. Each session has its own key pair, kept with the
 * session so that every process, machine or tab sharing it signs with the same key, and every
 * request of the session carries a proof signed with it.
 */

const PARAMS: Record<
  DpopAlgorithm,
  { generate: EcKeyGenParams | RsaHashedKeyGenParams | Algorithm; sign: EcdsaParams | Algorithm }
> = {
  ES256: { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams },
  EdDSA: { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
  RS256: {
    generate: {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
  },
};

const KEY_DB = 'tokenkeeper-dpop';
const KEY_TABLE = 'keys';

/**
 * The DPoP keys of one manager's sessions, and the nonces its servers hand out (one per server
 * origin, shared by every session).
 */
export class DpopKeys {
  readonly allowBearer: boolean;
  readonly #alg: DpopAlgorithm;
  readonly #mode: CheckedDpop['mode'];
  readonly #given: CryptoKeyPair | undefined;
  readonly #storeName: string;
  readonly #nonces = new Map<string, string>();
  /** Signers of sessions in use, by session key and key thumbprint (no import per request). */
  readonly #signers = new Map<string, Promise<DpopSigner>>();

  constructor(checked: CheckedDpop, storeName: string) {
    this.#alg = checked.alg;
    this.#mode = checked.mode;
    this.#given = checked.given;
    this.allowBearer = checked.allowBearer;
    this.#storeName = storeName;
  }

  /** A new key for a session being logged in: its signer, and what its record keeps. */
  async create(): Promise<{ signer: DpopSigner; record: DpopRecord }> {
    if (this.#mode === 'given') {
      const pair = this.#given as CryptoKeyPair;
      const signer = await this.#signer(pair, this.#alg);
      return { signer, record: { alg: this.#alg, jkt: signer.jkt, ref: 'given' } };
    }
    const extractable = this.#mode === 'jwk';
    const pair = (await crypto.subtle.generateKey(PARAMS[this.#alg].generate, extractable, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const signer = await this.#signer(pair, this.#alg);
    if (this.#mode === 'jwk') {
      const jwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
      return { signer, record: { alg: this.#alg, jkt: signer.jkt, jwk: pick(jwk, PRIVATE_MEMBERS) } };
    }
    await idbKeys('readwrite', (keys) => keys.put(pair, this.#idbKey(signer.jkt)));
    return { signer, record: { alg: this.#alg, jkt: signer.jkt, ref: 'idb' } };
  }

  /** The signer of a stored session: its key, read with the record (under the lock for a refresh). */
  signerOf(sessionKey: string, sessionId: string, rec: DpopRecord | undefined): Promise<DpopSigner> {
    const missing = (why: string) =>
      new TokenkeeperError(
        'TOKENKEEPER_DPOP',
        `The DPoP key of session ${JSON.stringify(sessionId)} ${why}: its tokens are bound to that key and cannot be used without it. Log in again.`,
        { key: sessionKey, sessionId },
      );
    if (rec === undefined) return Promise.reject(missing('is missing from its record'));
    const cacheKey = `${sessionKey}\u0000${rec.jkt}`;
    let signer = this.#signers.get(cacheKey);
    if (signer === undefined) {
      signer = this.#load(rec).catch((error: unknown) => {
        this.#signers.delete(cacheKey);
        throw error instanceof TokenkeeperError ? error : missing(`cannot be used (${(error as Error).message})`);
      });
      this.#signers.set(cacheKey, signer);
      if (this.#signers.size > 1000) this.#signers.delete(this.#signers.keys().next().value as string);
    }
    return signer;
  }

  /** Deletes a logged-out session's key (IndexedDB keys; a key in the record goes with it). */
  async forget(sessionKey: string, rec: DpopRecord | undefined): Promise<void> {
    if (rec === undefined) return;
    this.#signers.delete(`${sessionKey}\u0000${rec.jkt}`);
    if (rec.ref === 'idb') await idbKeys('readwrite', (keys) => keys.delete(this.#idbKey(rec.jkt)));
  }

  async #load(rec: DpopRecord): Promise<DpopSigner> {
    if (!(rec.alg in PARAMS)) throw new Error(`unknown algorithm ${String(rec.alg)}`);
    let pair: CryptoKeyPair;
    if (rec.ref === 'given') {
      pair = this.#given ?? fail('the session was bound to a key pair given to another manager');
    } else if (rec.ref === 'idb') {
      const found = await idbKeys('readonly', (keys) => keys.get(this.#idbKey(rec.jkt)));
      pair = (found as CryptoKeyPair | undefined) ?? fail('is not in this browser');
    } else {
      if (typeof rec.jwk !== 'object' || rec.jwk === null) fail('is missing from its record');
      const jwk = rec.jwk as JsonWebKey;
      const params = PARAMS[rec.alg].generate;
      const privateKey = await crypto.subtle.importKey('jwk', jwk, params, false, ['sign']);
      const publicKey = await crypto.subtle.importKey('jwk', pick(jwk, PUBLIC_MEMBERS), params, true, ['verify']);
      pair = { privateKey, publicKey };
    }
    if (algorithmOf(pair.privateKey) !== rec.alg) fail(`is not a ${rec.alg} key`);
    const signer = await this.#signer(pair, rec.alg);
    if (signer.jkt !== rec.jkt) fail('is not the key the session was bound to');
    return signer;
  }

  async #signer(pair: CryptoKeyPair, alg: DpopAlgorithm): Promise<DpopSigner> {
    const publicJwk = pick(await crypto.subtle.exportKey('jwk', pair.publicKey), PUBLIC_MEMBERS);
    const jkt = await thumbprint(publicJwk);
    const header = encode({ typ: 'dpop+jwt', alg, jwk: publicJwk });
    const nonces = this.#nonces;
    // The token's hash, for `ath`: the same token signs many requests, so hash it once.
    let hashed: { token: string; ath: Promise<string> } | undefined;
    const athOf = (token: string) => {
      if (hashed?.token !== token) hashed = { token, ath: sha256(token).then((h) => toBase64Url(new Uint8Array(h))) };
      return hashed.ath;
    };
    return {
      jkt,
      allowBearer: this.allowBearer,
      async proof(htm, url, accessToken) {
        const u = new URL(url);
        const payload: Record<string, unknown> = {
          jti: toBase64Url(crypto.getRandomValues(new Uint8Array(16))),
          htm,
          htu: `${u.origin}${u.pathname}`,
          iat: Math.floor(Date.now() / 1000),
        };
        const nonce = nonces.get(u.origin);
        if (nonce !== undefined) payload.nonce = nonce;
        if (accessToken !== undefined) payload.ath = await athOf(accessToken);
        const input = `${header}.${encode(payload)}`;
        const signature = await crypto.subtle.sign(PARAMS[alg].sign, pair.privateKey, new TextEncoder().encode(input));
        return `${input}.${toBase64Url(new Uint8Array(signature))}`;
      },
      learn(response, url) {
        const nonce = response.headers.get('dpop-nonce');
        if (nonce) nonces.set(new URL(url).origin, nonce);
      },
    };
  }

  /** A key's entry: by thumbprint, unique per key, so a key can be stored before its session id is known. */
  #idbKey(jkt: string): string {
    return `${this.#storeName}|${jkt}`;
  }
}

function fail(why: string): never {
  throw new Error(why);
}

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'];
const PRIVATE_MEMBERS = [...PUBLIC_MEMBERS, 'd', 'p', 'q', 'dp', 'dq', 'qi'];

function pick(jwk: JsonWebKey, members: string[]): JsonWebKey {
  const out: Record<string, unknown> = {};
  for (const m of members)
    if ((jwk as Record<string, unknown>)[m] !== undefined) out[m] = (jwk as Record<string, unknown>)[m];
  return out as JsonWebKey;
}

/** RFC 7638: SHA-256 over the required members, in order. */
async function thumbprint(jwk: JsonWebKey): Promise<string> {
  const members =
    jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : jwk.kty === 'OKP' ? ['crv', 'kty', 'x'] : ['e', 'kty', 'n'];
  const canonical = JSON.stringify(pick(jwk, members), members);
  return toBase64Url(new Uint8Array(await sha256(canonical)));
}

function sha256(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
}

function encode(value: unknown): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify(value)));
}

/** One transaction on the browser's DPoP key table (keys are CryptoKeyPairs, kept as they are). */
async function idbKeys<T>(mode: IDBTransactionMode, run: (keys: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const open = indexedDB.open(KEY_DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(KEY_TABLE);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(KEY_TABLE, mode);
      const request = run(tx.objectStore(KEY_TABLE));
      tx.oncomplete = () => resolve(request.result);
      tx.onabort = tx.onerror = () => reject(tx.error ?? request.error);
    });
  } finally {
    db.close();
  }
}
