import { TokenkeeperError } from '../errors.js';
import { isPlainObject } from '../store/kit/records.js';
import { fromBase64 } from './base64.js';

/** A 256-bit key: 32 raw bytes, their base64/base64url text, or a Web Crypto AES-GCM key. */
export type EncryptionKey = Uint8Array | string | CryptoKey;

export interface EncryptionOptions {
  /**
   * Every key that may have written a record, by key ID. IDs are stored beside each record, so
   * keep old keys here until every record has been rewritten with the current one.
   */
  keys: Record<string, EncryptionKey>;
  /** The ID of the key new writes use. */
  current: string;
  /**
   * Read records written before encryption was turned on (they are encrypted when next
   * written). Off by default: an attacker who can write the store could otherwise plant tokens.
   */
  readPlaintext?: boolean;
  /**
   * Bound into every record as additional data beside its key: a record written under another
   * context fails to decrypt. The session manager sets it to its issuer and client id, so a
   * record moved between apps (or servers) is refused instead of sending its tokens elsewhere.
   * Records written without a context still decrypt (and get it on their next write).
   */
  context?: string;
}

/** Checks encryption options (never echoing a key), and returns the keys as bytes or CryptoKeys. */
export function checkEncryptionOptions(options: EncryptionOptions): Map<string, Uint8Array<ArrayBuffer> | CryptoKey> {
  const fail = (why: string) =>
    new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', `Invalid encryption options: ${why}.`);
  if (typeof options !== 'object' || options === null || !isPlainObject(options.keys)) {
    throw fail('expected { keys: { <id>: <32-byte key> }, current: <id> }');
  }
  if (options.context !== undefined && typeof options.context !== 'string') throw fail('context must be a string');
  const keys = new Map<string, Uint8Array<ArrayBuffer> | CryptoKey>();
  for (const [kid, key] of Object.entries(options.keys)) {
    if (kid.length === 0) throw fail('a key ID must not be empty');
    if (typeof CryptoKey !== 'undefined' && key instanceof CryptoKey) {
      if (key.algorithm.name !== 'AES-GCM' || (key.algorithm as AesKeyAlgorithm).length !== 256) {
        throw fail(`key ${JSON.stringify(kid)} must be an AES-GCM 256-bit CryptoKey`);
      }
      keys.set(kid, key);
      continue;
    }
    const bytes = typeof key === 'string' ? fromBase64(key) : key instanceof Uint8Array ? key : undefined;
    if (bytes?.length !== 32) {
      // Never echo the key itself.
      throw fail(
        `key ${JSON.stringify(kid)} must be 32 bytes (a Uint8Array, or base64 text of 32 bytes); got ${
          bytes === undefined ? 'something else' : `${bytes.length} bytes`
        }`,
      );
    }
    keys.set(kid, new Uint8Array(bytes));
  }
  if (typeof options.current !== 'string' || !keys.has(options.current)) {
    throw fail(`current must name one of the keys (${[...keys.keys()].join(', ') || 'none given'})`);
  }
  return keys;
}
