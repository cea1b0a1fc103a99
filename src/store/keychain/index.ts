import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { TokenkeeperError } from '../../errors.js';
import { defaultStorePath } from '../file/index.js';
import { acquireFileLock } from '../file/lockfile.js';
import { encodeKey } from '../file/names.js';
import { assertValidKey, assertValidPrefix, storeNamespace } from '../kit/keys.js';
import {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  corruptRecord,
  isPlainObject,
  lockOptions,
  parseJson,
} from '../kit/records.js';
import { planDelete, planSet, readStored, type Stored } from '../kit/write.js';
import type { DeleteOptions, Lease, LockOptions, SetOptions, Store, StoreEntry, StoreRecord } from '../types.js';

/**
 * The operating system's keychain as a store (`tokenkeeper/keychain`, on `@napi-rs/keyring`, an
 * optional peer): the macOS Keychain, the Windows Credential Manager, the Linux Secret Service
 * (GNOME Keyring, KWallet). For CLIs and desktop apps: tokens sit where the OS keeps passwords,
 * not in a file.
 *
 * Each record is one keychain entry (service `tokenkeeper.<namespace>`, account: the key). A
 * keychain cannot list entries by prefix, so an index entry lists the keys; a keychain cannot
 * compare-and-set either, so writes and the lock go through lock files in a folder beside it.
 */
export interface KeychainStoreOptions {
  /** The keychain service is `tokenkeeper.<namespace>` (default `tokenkeeper`): one per application. */
  namespace?: string;
  /**
   * Where the lock files go (default: `keychain-locks/<namespace>` in the file store's folder,
   * 0700). Every process sharing the keychain must use the same folder.
   */
  lockDir?: string;
  /**
   * Linux: the credential store to require (default `secret-service`, which persists; the
   * kernel keyring, `keyutils`, forgets everything at logout).
   */
  linuxStore?: 'secret-service' | 'keyutils';
}

type Keyring = typeof import('@napi-rs/keyring');
type Entry = InstanceType<Keyring['AsyncEntry']>;

/** What one entry's password holds. */
interface Slot {
  v: number;
  e: number | null;
  d: StoreRecord;
}

const WRITE_LEASE_MS = 10_000;
const WRITE_WAIT_MS = 30_000;
const INDEX_ACCOUNT = 'index';
/** Entry objects kept per store (each holds a keychain connection). */
const MAX_ENTRIES = 64;

export function keychainStore(options: KeychainStoreOptions = {}): Store {
  if (typeof options !== 'object' || options === null) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'keychainStore(options) takes an options object.');
  }
  const namespace = storeNamespace(options.namespace, 'keychainStore') ?? 'tokenkeeper';
  const service = `tokenkeeper.${namespace}`;
  const lockDir = options.lockDir ?? join(defaultStorePath(), 'keychain-locks', namespace);
  const linuxStore = options.linuxStore ?? 'secret-service';
  const name = `keychain:${service}`;
  let keyring: Promise<Keyring> | undefined;
  let ready: Promise<void> | undefined;
  let closed = false;

  const load = () => {
    keyring ??= import('@napi-rs/keyring').catch((error: unknown) => {
      keyring = undefined;
      throw new TokenkeeperError(
        'TOKENKEEPER_STORE_UNAVAILABLE',
        'keychainStore needs the @napi-rs/keyring package: npm install @napi-rs/keyring.',
        { cause: error },
      );
    });
    return keyring;
  };
  const open = async () => {
    if (closed) throw closedError(name);
    ready ??= fs.mkdir(lockDir, { recursive: true, mode: 0o700 }).then(
      () => {},
      (error: unknown) => {
        ready = undefined;
        throw unavailable(error, `the lock folder ${lockDir}`);
      },
    );
    await ready;
  };
  // Each entry object holds its own connection to the keychain (on Linux a D-Bus connection):
  // keep the recent ones rather than open one per call.
  const entries = new Map<string, Entry>();
  const entry = async (account: string, svc = service): Promise<Entry> => {
    const id = `${svc}\u0000${account}`;
    let found = entries.get(id);
    if (found === undefined) {
      found = new (await load()).AsyncEntry(svc, account, { linux: { store: linuxStore } });
      entries.set(id, found);
      if (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
    }
    return found;
  };
  /**
   * A keychain call, its failure typed (a locked keychain, no Secret Service, a denied prompt).
   * One at a time per store: keychains serve one request at a time anyway, and some (GNOME
   * Keyring) are not robust to many at once from one client.
   */
  let tail: Promise<unknown> = Promise.resolve();
  const call = <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn).catch((error: unknown) => {
      if (error instanceof TokenkeeperError) throw error;
      throw unavailable(error, `the keychain (${what})`);
    });
    tail = run.catch(() => {});
    return run;
  };

  const readSlot = async (key: string): Promise<Slot | undefined> => {
    const text = await call('read', async () => (await entry(key)).getPassword());
    if (text === null || text === undefined) return undefined;
    const slot = parseJson(text) as Partial<Slot> | undefined;
    if (
      !isPlainObject(slot) ||
      !Number.isSafeInteger(slot.v) ||
      (slot.v as number) < 1 ||
      !(slot.e === null || typeof slot.e === 'number') ||
      !isPlainObject(slot.d)
    ) {
      throw corruptRecord(key, name, 'entry');
    }
    return slot as Slot;
  };
  const live = (slot: Slot | undefined) =>
    slot !== undefined && (slot.e === null || slot.e > Date.now()) ? slot : undefined;

  const guarded = async <T>(lockName: string, key: string, fn: () => Promise<T>): Promise<T> => {
    await open();
    const guard = await acquireFileLock(join(lockDir, lockName), key, {
      leaseMs: WRITE_LEASE_MS,
      waitMs: WRITE_WAIT_MS,
    });
    try {
      return await fn();
    } finally {
      await guard.release().catch(() => {});
    }
  };

  /** Adds or removes a key in the index entry (under its own lock: no lost update). */
  const updateIndex = (key: string, present: boolean) =>
    guarded('index.wlock', INDEX_ACCOUNT, async () => {
      const keys = await readIndex();
      if (keys.has(key) === present) return;
      if (present) keys.add(key);
      else keys.delete(key);
      await call('index', async () =>
        (await entry(INDEX_ACCOUNT, `${service}.index`)).setPassword(JSON.stringify([...keys])),
      );
    });
  const readIndex = async (): Promise<Set<string>> => {
    const text = await call('index', async () => (await entry(INDEX_ACCOUNT, `${service}.index`)).getPassword());
    const list = text ? parseJson(text) : [];
    return new Set(Array.isArray(list) ? list.filter((k): k is string => typeof k === 'string') : []);
  };

  const writeGuarded = <T>(key: string, fn: (stored: Stored) => Promise<T>) =>
    guarded(`${encodeKey(key)}.wlock`, key, async () =>
      fn(
        await readStored(async () => {
          const slot = live(await readSlot(key));
          return slot && { version: slot.v };
        }),
      ),
    );

  return {
    name,
    capabilities: { crossProcessLock: true },

    async get(key: string): Promise<StoreEntry | undefined> {
      assertValidKey(key);
      await open();
      const slot = live(await readSlot(key));
      if (slot === undefined) return undefined;
      return slot.e === null
        ? { value: slot.d, version: slot.v }
        : { value: slot.d, version: slot.v, expiresAt: slot.e };
    },

    async set(key: string, value: StoreRecord, setOptions?: SetOptions): Promise<number> {
      assertValidKey(key);
      checkSetOptions(setOptions, Date.now());
      const copy = copyRecord(value);
      return writeGuarded(key, async (stored) => {
        const version = planSet(key, stored, setOptions);
        const expiresAt = checkSetOptions(setOptions, Date.now()) ?? null;
        // Listed first: a crash between the two leaves a listed key without an entry (skipped), never an unlisted one.
        await updateIndex(key, true);
        const slot: Slot = { v: version, e: expiresAt, d: copy };
        await call('write', async () => (await entry(key)).setPassword(JSON.stringify(slot)));
        return version;
      });
    },

    async delete(key: string, deleteOptions?: DeleteOptions): Promise<boolean> {
      assertValidKey(key);
      checkDeleteOptions(deleteOptions);
      return writeGuarded(key, async (stored) => {
        const wasLive = planDelete(key, stored, deleteOptions);
        const removed = await call('delete', async () => (await entry(key)).deleteCredential());
        await updateIndex(key, false);
        return wasLive || (deleteOptions?.force === true && removed);
      });
    },

    async *keys(prefix = ''): AsyncIterable<string> {
      assertValidPrefix(prefix);
      await open();
      for (const key of await readIndex()) {
        if (!key.startsWith(prefix)) continue;
        try {
          if (live(await readSlot(key)) !== undefined) yield key;
        } catch (error) {
          // A corrupt entry is listed, so it can be found and removed.
          if (error instanceof TokenkeeperError && error.code === 'TOKENKEEPER_CORRUPT_RECORD') yield key;
          else throw error;
        }
      }
    },

    async lock(key: string, lockOpts?: LockOptions): Promise<Lease> {
      assertValidKey(key);
      const opts = lockOptions(lockOpts);
      await open();
      return acquireFileLock(join(lockDir, `${encodeKey(key)}.lock`), key, opts);
    },

    async close(): Promise<void> {
      closed = true;
      entries.clear();
    },
  };
}

function unavailable(error: unknown, what: string): TokenkeeperError {
  const reason = (error as { message?: string })?.message ?? String(error);
  return new TokenkeeperError(
    'TOKENKEEPER_STORE_UNAVAILABLE',
    `${what} cannot be used (${reason.slice(0, 200)}). A locked keychain must be unlocked by the user; on Linux a Secret Service (GNOME Keyring, KWallet) must run in the session. Where there is none (a server, a container, SSH), use fileStore() from tokenkeeper/file instead: 0600 files in a 0700 folder.`,
    { cause: error },
  );
}
