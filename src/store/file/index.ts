import { randomBytes } from 'node:crypto';
import { type FSWatcher, promises as fs, watch as watchDirectory } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { redactedCause, TokenkeeperError } from '../../errors.js';
import { assertValidKey, assertValidPrefix, namespaceOrAlias } from '../kit/keys.js';
import type { HeldLock } from '../kit/liveness.js';
import { ReleaseWakeups } from '../kit/poll-lock.js';
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
import type {
  ChangeListener,
  DeleteOptions,
  Lease,
  LockOptions,
  SetOptions,
  Store,
  StoreEntry,
  StoreRecord,
} from '../types.js';
import { acquireFileLock, NotRegular, readOwner, readRegularFile } from './lockfile.js';
import { decodeStem, encodeKey, escapeKey } from './names.js';

export interface FileStoreOptions {
  /**
   * The directory the store owns (created 0700 if missing). Default: {@link defaultStorePath}.
   * An existing directory that other users can read or enter is refused.
   */
  path?: string;
  /**
   * Keeps stores sharing one folder apart: the store keeps its files in
   * `<path or defaultStorePath()>/apps/<namespace>`, so two apps on one machine never share
   * sessions. 1 to 40 letters, digits or `_`, starting with a letter. Default: the folder itself.
   */
  namespace?: string;
  /**
   * @deprecated Use `namespace`. The default folder becomes `<defaultStorePath()>/apps/<app>`
   * (ignored when `path` is given). Letters, digits, `.`, `_` and `-`.
   */
  app?: string;
  /**
   * fsync every file and its directory on write (default true). Turning it off trades
   * durability across power loss for speed; writes stay atomic either way.
   */
  fsync?: boolean;
}

/** What a record file holds. Version 1 of the format. */
interface RecordFile {
  tokenkeeper: 1;
  key: string;
  version: number;
  expiresAt?: number;
  value: StoreRecord;
}

/** How long a writer may hold a key's write guard; a crashed writer delays others this long at most. */
const WRITE_LEASE_MS = 10_000;
const WRITE_WAIT_MS = 15_000;

/**
 * The platform's per-user config directory for tokenkeeper: `$XDG_CONFIG_HOME/tokenkeeper` or
 * `~/.config/tokenkeeper` on Linux and other Unixes, `~/Library/Application Support/tokenkeeper`
 * on macOS, `%APPDATA%\tokenkeeper` on Windows.
 */
export function defaultStorePath(
  env: Record<string, string | undefined> = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  if (platform === 'win32') return join(env.APPDATA || join(home, 'AppData', 'Roaming'), 'tokenkeeper');
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'tokenkeeper');
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, '.config'), 'tokenkeeper');
}

/** The folder of a store with these options: `path`, and `apps/<namespace>` in it. */
export function storeDir(options: FileStoreOptions, factory: string): string {
  const { namespace, alias: app } = namespaceOrAlias<string>(options, 'app', factory);
  return resolve(
    namespace !== undefined
      ? join(options.path ?? defaultStorePath(), 'apps', namespace)
      : (options.path ?? (app === undefined ? defaultStorePath() : join(defaultStorePath(), 'apps', app))),
  );
}

/**
 * The locks held now in a file store's folder, with the process and host that took each. Reads
 * only; for `tokenkeeper doctor`.
 */
export async function fileLocks(options: Pick<FileStoreOptions, 'path' | 'namespace'> = {}): Promise<HeldLock[]> {
  const dir = storeDir(options, 'fileLocks');
  const out: HeldLock[] = [];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.lock')) continue;
    const owner = await readOwner(join(dir, name)).catch(() => undefined);
    if (owner === undefined) continue; // released while we listed
    if (owner.token.startsWith('foreign:')) continue; // junk, no lock: fileLockJunk lists it
    const key = decodeStem(name.slice(0, -'.lock'.length)) ?? name;
    out.push({ key, pid: owner.pid, host: owner.host, remainingMs: owner.expiresAt - Date.now() });
  }
  return out;
}

/** Something at a lock, write-guard or breaker path of a file store that is no lock: see {@link fileLockJunk}. */
export interface LockJunk {
  /** The file's name in the store's folder. */
  name: string;
  /** What it is: an empty file, a symbolic link, ... */
  what: string;
  /** How long since it last changed, in ms. */
  ageMs: number;
}

/**
 * Files at lock, write-guard and breaker paths that hold no lock record (an empty file, garbage,
 * a symbolic link, a directory): left by a crash of another tool, a full disk or a hand. Takers
 * clear such junk once it is older than one lease; for `tokenkeeper doctor`.
 */
export async function fileLockJunk(options: Pick<FileStoreOptions, 'path' | 'namespace'> = {}): Promise<LockJunk[]> {
  const dir = storeDir(options, 'fileLockJunk');
  const out: LockJunk[] = [];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!/\.(lock|wlock|break)$/.test(name)) continue;
    const path = join(dir, name);
    const owner = await readOwner(path).catch(() => undefined);
    if (owner === undefined || !owner.token.startsWith('foreign:')) continue;
    const st = await fs.lstat(path).catch(() => undefined);
    if (st === undefined) continue;
    const what = st.isSymbolicLink()
      ? 'a symbolic link'
      : st.isDirectory()
        ? 'a directory'
        : !st.isFile()
          ? 'not a regular file'
          : st.size === 0
            ? 'an empty file'
            : 'not a lock record';
    out.push({ name, what, ageMs: Math.max(0, Date.now() - st.mtimeMs) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * A store of one file per key in a directory: durable, atomic (temp file, fsync, rename, fsync
 * of the directory), files 0600 in a 0700 directory whatever the umask. Several processes may
 * share one directory: `lock` is a cross-process lease, and each key's writes are serialised
 * under a short-lived guard, so no write is lost and versions never repeat.
 *
 * @example
 * import { fileStore } from 'tokenkeeper/file';
 * const store = fileStore({ path: './.tokens' });
 */
export function fileStore(options: FileStoreOptions = {}): Store {
  if (typeof options !== 'object' || options === null) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'fileStore() options must be an object.');
  }
  if (options.path !== undefined && (typeof options.path !== 'string' || options.path.length === 0)) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'fileStore({ path }) must be a non-empty string.');
  }
  if (
    options.app !== undefined &&
    (typeof options.app !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/.test(options.app))
  ) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'fileStore({ app }) must be 1 to 64 letters, digits, ".", "_" or "-", not starting with ".".',
    );
  }
  const dir = storeDir(options, 'fileStore');
  const durable = options.fsync !== false;
  const name = `file:${dir}`;
  let ready: Promise<void> | undefined;
  let closed = false;

  const open = (): Promise<void> => {
    if (closed) return Promise.reject(closedError(name));
    ready ??= prepareDirectory(dir).catch((error) => {
      ready = undefined; // let a later call try again, for example once the disk is mounted
      throw error;
    });
    return ready;
  };
  const recordPath = (key: string) => join(dir, `${encodeKey(key)}.json`);

  // Directory events (inotify, FSEvents): a lock file removed wakes its waiters; a record file
  // renamed into place tells watchers its key changed. One watcher per store, made on first
  // need, never keeping the process alive; where the platform has none, waiters poll.
  const watchers = new Set<ChangeListener>();
  let events: FSWatcher | undefined;
  const listen = () => {
    if (events !== undefined || closed) return;
    try {
      events = watchDirectory(dir, { persistent: false }, (_event, name) => {
        if (typeof name !== 'string' || name.startsWith('.')) return;
        if (name.endsWith('.lock')) lockWaiters.wake(name);
        else if (name.endsWith('.json') && watchers.size > 0) {
          const key = decodeStem(name.slice(0, -'.json'.length));
          if (key !== undefined) for (const listener of watchers) listener(key);
        }
      });
      events.on('error', () => {
        events?.close();
        events = undefined; // polling until the next waiter listens again
      });
    } catch {
      events = undefined;
    }
  };
  const lockWaiters = new ReleaseWakeups(() => listen());

  const read = async (key: string, file: string): Promise<RecordFile | undefined> => {
    const text = await readRegularFile(file).catch((error) => {
      if (error instanceof NotRegular) throw notARecord(file, key, `not ${error.what}`);
      throw ioError(error, file, key);
    });
    return text === undefined ? undefined : parseRecordFile(text, key, file);
  };

  /** Runs `fn` on what is stored at `key`, under the key's write guard (other processes wait). */
  const writeGuarded = async <T>(key: string, fn: (stored: Stored, file: string) => Promise<T>) => {
    await open();
    const file = recordPath(key);
    const guard = await acquireFileLock(`${file.slice(0, -'.json'.length)}.wlock`, key, {
      leaseMs: WRITE_LEASE_MS,
      waitMs: WRITE_WAIT_MS,
    }).catch((error) => {
      throw ioError(error, dir, key);
    });
    try {
      const stored = await readStored(async () => {
        const rec = await read(key, file);
        return rec?.expiresAt !== undefined && rec.expiresAt <= Date.now() ? undefined : rec;
      });
      return await fn(stored, file);
    } finally {
      await guard.release();
    }
  };

  return {
    name,
    capabilities: { crossProcessLock: true },

    async get(key: string): Promise<StoreEntry | undefined> {
      assertValidKey(key);
      await open();
      const rec = await read(key, recordPath(key));
      if (rec === undefined || (rec.expiresAt !== undefined && rec.expiresAt <= Date.now())) return undefined;
      return rec.expiresAt === undefined
        ? { value: rec.value, version: rec.version }
        : { value: rec.value, version: rec.version, expiresAt: rec.expiresAt };
    },

    async set(key: string, value: StoreRecord, setOptions?: SetOptions): Promise<number> {
      assertValidKey(key);
      checkSetOptions(setOptions, Date.now());
      const copy = copyRecord(value);
      return writeGuarded(key, async (stored, file) => {
        const version = planSet(key, stored, setOptions);
        // TTL counts from the write, not from when the guard was requested.
        const expiresAt = checkSetOptions(setOptions, Date.now());
        const rec: RecordFile = { tokenkeeper: 1, key, version, value: copy };
        if (expiresAt !== undefined) rec.expiresAt = expiresAt;
        await writeAtomically(dir, file, JSON.stringify(rec), durable).catch((error) => {
          throw ioError(error, file, key);
        });
        return rec.version;
      });
    },

    async delete(key: string, deleteOptions?: DeleteOptions): Promise<boolean> {
      assertValidKey(key);
      checkDeleteOptions(deleteOptions);
      return writeGuarded(key, async (stored, file) => {
        const live = planDelete(key, stored, deleteOptions);
        try {
          await fs.unlink(file);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
          throw ioError(error, file, key);
        }
        if (durable) await fsyncDirectory(dir);
        return live || deleteOptions?.force === true;
      });
    },

    async *keys(prefix = ''): AsyncIterable<string> {
      assertValidPrefix(prefix);
      await open();
      const wanted = escapeKey(prefix);
      let handle: import('node:fs').Dir;
      try {
        handle = await fs.opendir(dir, { bufferSize: 64 });
      } catch (error) {
        throw ioError(error, dir);
      }
      for await (const entry of handle) {
        const fileName = entry.name;
        if (!entry.isFile() || !fileName.endsWith('.json') || fileName.startsWith('.')) continue;
        const stem = fileName.slice(0, -'.json'.length);
        const hashed = stem.startsWith('~');
        if (!hashed && !stem.startsWith(wanted)) continue;
        const key = decodeStem(stem);
        if (!hashed && key === undefined) continue; // not a file we wrote
        let rec: RecordFile | undefined;
        try {
          rec = await read(key ?? '', join(dir, fileName));
        } catch (error) {
          // A corrupt record is still listed by its name, so it can be found and removed.
          if (key !== undefined && error instanceof TokenkeeperError && error.code === 'TOKENKEEPER_CORRUPT_RECORD') {
            yield key;
          }
          continue;
        }
        if (rec === undefined || (rec.expiresAt !== undefined && rec.expiresAt <= Date.now())) continue;
        if (hashed ? rec.key.startsWith(prefix) && encodeKey(rec.key) === stem : true) yield rec.key;
      }
    },

    async lock(key: string, lockOpts?: LockOptions): Promise<Lease> {
      assertValidKey(key);
      const opts = lockOptions(lockOpts);
      await open();
      const name = `${encodeKey(key)}.lock`;
      return acquireFileLock(join(dir, name), key, { ...opts, wake: lockWaiters.wakeFor(name) }).catch((error) => {
        throw ioError(error, dir, key);
      });
    },

    /**
     * Calls `listener` with the key of a record file written or deleted in the folder (by any
     * process, this one too), as the platform's directory events report it.
     */
    watch(listener: ChangeListener): () => void {
      void open().then(listen, () => {});
      watchers.add(listener);
      return () => watchers.delete(listener);
    },

    async close(): Promise<void> {
      closed = true;
      events?.close();
      events = undefined;
      watchers.clear();
      lockWaiters.clear();
    },
  };
}

function notARecord(file: string, key: string, what = 'truncated, or edited by hand'): TokenkeeperError {
  return corruptRecord(key, file, 'file', what);
}

function parseRecordFile(text: string, key: string, file: string): RecordFile {
  const rec = parseJson(text) as Partial<RecordFile> | undefined;
  if (
    rec === undefined ||
    !isPlainObject(rec) ||
    rec.tokenkeeper !== 1 ||
    typeof rec.key !== 'string' ||
    !Number.isSafeInteger(rec.version) ||
    (rec.version as number) < 1 ||
    (rec.expiresAt !== undefined && typeof rec.expiresAt !== 'number') ||
    !isPlainObject(rec.value)
  ) {
    throw notARecord(file, key);
  }
  if (key !== '' && rec.key !== key) {
    throw notARecord(file, key, 'it holds the record of another key: copied or renamed by hand?');
  }
  return rec as RecordFile;
}

async function prepareDirectory(dir: string): Promise<void> {
  let st: import('node:fs').Stats | undefined;
  try {
    st = await fs.stat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(error, dir);
  }
  if (st === undefined) {
    try {
      await fs.mkdir(join(dir, '..'), { recursive: true, mode: 0o700 });
      await fs.mkdir(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(error, dir);
    }
    // mkdir's mode is filtered by the umask; set it exactly.
    if (process.platform !== 'win32') await fs.chmod(dir, 0o700).catch((error) => Promise.reject(ioError(error, dir)));
    st = await fs.stat(dir);
  }
  if (!st.isDirectory()) {
    throw new TokenkeeperError(
      'TOKENKEEPER_STORE_UNAVAILABLE',
      `The file store path ${dir} exists and is not a directory.`,
    );
  }
  if (process.platform !== 'win32') {
    const uid = process.getuid?.();
    if ((st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid)) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INSECURE_PERMISSIONS',
        `The file store directory ${dir} is ${uid !== undefined && st.uid !== uid ? 'owned by another user' : `mode ${(st.mode & 0o777).toString(8)}`}; ` +
          'tokens must not be readable by other users. Give the store a directory of its own: a path that does not exist yet (the store makes it, mode 700), or an empty one only you can enter (mode 700).',
      );
    }
  }
  await fs.access(dir, 2 /* W_OK */).catch((error) => Promise.reject(ioError(error, dir)));
}

async function writeAtomically(dir: string, file: string, text: string, durable: boolean): Promise<void> {
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    try {
      await handle.chmod(0o600); // the umask may have taken bits away; never adds them, but be exact
      await handle.writeFile(text, 'utf8');
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (error) {
    await fs.unlink(tmp).catch(() => {});
    throw error;
  }
  if (durable) await fsyncDirectory(dir);
}

async function fsyncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return; // directories cannot be opened for fsync there
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Turns a Node I/O error into `TOKENKEEPER_STORE_UNAVAILABLE`; anything else (ours, an abort reason) passes. */
function ioError(error: unknown, path: string, key?: string): unknown {
  if (!(error instanceof Error) || typeof (error as NodeJS.ErrnoException).syscall !== 'string') return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
  const hint =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? ' Check that this process may write the store directory.'
      : code === 'ENOSPC'
        ? ' The disk is full.'
        : '';
  return new TokenkeeperError('TOKENKEEPER_STORE_UNAVAILABLE', `File store I/O failed on ${path} (${code}).${hint}`, {
    cause: redactedCause(error),
    key,
  });
}
