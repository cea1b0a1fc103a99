import { TokenkeeperError } from '../errors.js';
import { copyRecord, isPlainObject } from '../store/kit/records.js';
import type { DeleteOptions, Lease, LockOptions, SetOptions, Store, StoreEntry, StoreRecord } from '../store/types.js';
import { fromBase64, toBase64Url } from './base64.js';
import { checkEncryptionOptions, type EncryptionOptions } from './encryption-options.js';

export type { EncryptionKey, EncryptionOptions } from './encryption-options.js';

/** The envelope an encrypted record is stored as. Version 1: AES-256-GCM, 96-bit IV. */
interface Envelope {
  tk: 1;
  alg: 'A256GCM';
  kid: string;
  iv: string;
  ct: string;
  [key: string]: string | number;
}

/**
 * Wraps a store so that every record is encrypted at rest with AES-256-GCM (Web Crypto: Node
 * and browsers). The record's store key is bound in as additional data, so a record copied to
 * another key fails to decrypt instead of impersonating another session. A wrong key or tampered
 * bytes throw `TOKENKEEPER_DECRYPT_FAILED` naming the key ID; nothing is ever returned garbled.
 *
 * @example
 * const store = encryptedStore(fileStore(), { keys: { k1: process.env.TK_KEY! }, current: 'k1' });
 */
export function encryptedStore(inner: Store, options: EncryptionOptions): Store {
  const keys = checkEncryptionOptions(options);
  const imported = new Map<string, Promise<CryptoKey>>();
  const cryptoKey = (kid: string): Promise<CryptoKey> => {
    let p = imported.get(kid);
    if (p === undefined) {
      const raw = keys.get(kid) as Uint8Array<ArrayBuffer> | CryptoKey;
      p =
        raw instanceof Uint8Array
          ? globalThis.crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt'])
          : Promise.resolve(raw);
      imported.set(kid, p);
    }
    return p;
  };

  const encode = async (key: string, value: StoreRecord): Promise<StoreRecord> => {
    const plaintext = new TextEncoder().encode(JSON.stringify(value));
    const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
    const ct = await globalThis.crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: aad(key, options.context) },
      await cryptoKey(options.current),
      plaintext,
    );
    // `ctx: 1` says a context was bound in as additional data (see EncryptionOptions.context).
    const envelope: Envelope = {
      tk: 1,
      alg: 'A256GCM',
      kid: options.current,
      iv: toBase64Url(iv),
      ct: toBase64Url(new Uint8Array(ct)),
    };
    if (options.context !== undefined) envelope.ctx = 1;
    return envelope;
  };

  const decode = async (key: string, stored: StoreRecord): Promise<StoreRecord> => {
    if (!isEnvelope(stored)) {
      if (options.readPlaintext && stored.tk === undefined) return stored;
      throw new TokenkeeperError(
        'TOKENKEEPER_CORRUPT_RECORD',
        'This record is not an encrypted tokenkeeper record. If it was written before encryption was ' +
          'turned on, pass readPlaintext: true until it has been rewritten; otherwise delete it and log in again.',
        { key },
      );
    }
    if (!keys.has(stored.kid)) {
      throw new TokenkeeperError(
        'TOKENKEEPER_DECRYPT_FAILED',
        `This record was encrypted with key ID ${JSON.stringify(stored.kid)}, which is not among the configured keys (${[
          ...keys.keys(),
        ]
          .map((k) => JSON.stringify(k))
          .join(', ')}). Add that key to encryption.keys.`,
        { key },
      );
    }
    const iv = fromBase64(stored.iv);
    const ct = fromBase64(stored.ct);
    let plaintext: ArrayBuffer;
    try {
      if (iv === undefined || ct === undefined || iv.length !== 12) throw new Error('malformed envelope');
      plaintext = await globalThis.crypto.subtle.decrypt(
        { name: 'AES-GCM', iv, additionalData: aad(key, stored.ctx === 1 ? (options.context ?? '') : undefined) },
        await cryptoKey(stored.kid),
        ct,
      );
    } catch {
      throw new TokenkeeperError(
        'TOKENKEEPER_DECRYPT_FAILED',
        `This record does not decrypt with key ID ${JSON.stringify(stored.kid)}: the key is wrong, or the ` +
          'record was tampered with, moved from another key, or written by another app or for another server. ' +
          'Other records are unaffected; delete this one and log in again.',
        { key },
      );
    }
    try {
      const value: unknown = JSON.parse(new TextDecoder().decode(plaintext));
      if (!isPlainObject(value)) throw new Error('not an object');
      return value as StoreRecord;
    } catch (cause) {
      throw new TokenkeeperError('TOKENKEEPER_CORRUPT_RECORD', 'The decrypted record is not a JSON object.', {
        key,
        cause,
      });
    }
  };

  return {
    name: `encrypted(${inner.name})`,
    capabilities: inner.capabilities,
    async get(key: string): Promise<StoreEntry | undefined> {
      const entry = await inner.get(key);
      if (entry === undefined) return undefined;
      return { ...entry, value: await decode(key, entry.value) };
    },
    async set(key: string, value: StoreRecord, setOptions?: SetOptions): Promise<number> {
      // The inner store sees only the envelope: validate the record itself here.
      return inner.set(key, await encode(key, copyRecord(value)), setOptions);
    },
    delete(key: string, deleteOptions?: DeleteOptions): Promise<boolean> {
      return inner.delete(key, deleteOptions);
    },
    keys(prefix?: string): AsyncIterable<string> {
      return inner.keys(prefix);
    },
    lock(key: string, lockOptions?: LockOptions): Promise<Lease> {
      return inner.lock(key, lockOptions);
    },
    close(): Promise<void> {
      return inner.close();
    },
    ...(inner.watch ? { watch: inner.watch.bind(inner) } : {}),
  };
}

function aad(key: string, context?: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(
    context === undefined ? `tokenkeeper:v1:${key}` : `tokenkeeper:v1:${key}\n${context}`,
  );
}

function isEnvelope(v: StoreRecord): v is Envelope {
  return (
    v.tk === 1 &&
    v.alg === 'A256GCM' &&
    typeof v.kid === 'string' &&
    typeof v.iv === 'string' &&
    typeof v.ct === 'string'
  );
}
