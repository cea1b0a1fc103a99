import { TokenkeeperError } from '../errors.js';
import { browserStorageError } from '../store/browser/errors.js';
import { idbFactory, openDatabase, transact } from '../store/browser/indexeddb.js';
import type { EncryptionOptions } from './encrypted.js';

export interface BrowserEncryptionKeyOptions {
  /** The IndexedDB database that keeps the keys (default `tokenkeeper-keys`). */
  database?: string;
  /** The ID of the key new writes use (default `k1`). A new ID creates a new key: a rotation. */
  id?: string;
  /** The IndexedDB factory (default `globalThis.indexedDB`). */
  indexedDB?: IDBFactory;
}

const KEYS = 'keys';

/**
 * Encryption options for the browser whose AES-256-GCM key never leaves the browser's crypto
 * engine: the key is created non-extractable and kept as a `CryptoKey` in IndexedDB (which can
 * store one without exposing its bytes), so no script, not even this page's, can read it out;
 * an XSS can still use it while it runs, as it could use the tokens.
 *
 * Every tab of the origin gets the same key: the first to ask creates it inside a transaction.
 * Pass a new `id` to rotate: new writes use it, and records under the older keys still decrypt
 * (they stay in the database and in `keys`). Clearing the site's data deletes the key, and with
 * it every session stored under it: users log in again.
 *
 * @example
 * const manager = new SessionManager({
 *   store: indexedDbStore(), encryption: await browserEncryptionKey(), issuer, client: { clientId },
 * });
 */
export async function browserEncryptionKey(options: BrowserEncryptionKeyOptions = {}): Promise<EncryptionOptions> {
  const id = options.id ?? 'k1';
  const database = options.database ?? 'tokenkeeper-keys';
  for (const [what, value] of [
    ['id', id],
    ['database', database],
  ] as const) {
    if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        `browserEncryptionKey: ${what} must be a non-empty string.`,
      );
    }
  }
  const where = `IndexedDB database ${JSON.stringify(database)}`;
  const factory = idbFactory(options.indexedDB, where);
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) {
    throw new TokenkeeperError(
      'TOKENKEEPER_STORE_UNAVAILABLE',
      'browserEncryptionKey needs Web Crypto (crypto.subtle exists only in secure contexts).',
    );
  }
  const fresh = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  let db: IDBDatabase | undefined;
  try {
    db = await openDatabase(factory, database, [KEYS], () => {});
    const all = await transact<Record<string, CryptoKey>>(db, [KEYS], 'readwrite', (tx, finish) => {
      const keys = tx.objectStore(KEYS);
      keys.get(id).onsuccess = (e) => {
        if ((e.target as IDBRequest<unknown>).result === undefined) keys.put(fresh, id); // first tab to ask
        const ids = keys.getAllKeys();
        const values = keys.getAll();
        values.onsuccess = () => {
          const out: Record<string, CryptoKey> = {};
          ids.result.forEach((kid, i) => {
            if (typeof kid === 'string' && values.result[i] instanceof CryptoKey) out[kid] = values.result[i];
          });
          finish(out);
        };
      };
    });
    return { keys: all, current: id };
  } catch (error) {
    throw browserStorageError(error, where);
  } finally {
    db?.close();
  }
}
