import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import { redactedCause, TokenkeeperError } from '../../errors.js';
import { describeServer } from '../kit/describe.js';
import { assertValidKey, assertValidPrefix, namespaceOrAlias } from '../kit/keys.js';
import { createLease } from '../kit/lease.js';
import type { HeldLock } from '../kit/liveness.js';
import { pollLock, ReleaseWakeups } from '../kit/poll-lock.js';
import {
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  corruptRecord,
  isPlainObject,
  lockOptions,
  randomToken,
  versionConflict,
} from '../kit/records.js';
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

/** The ioredis client or cluster a store uses: anything with these commands. */
type RedisLike = Pick<
  Redis,
  'get' | 'set' | 'del' | 'eval' | 'evalsha' | 'scan' | 'quit' | 'disconnect' | 'status' | 'config'
> & {
  /** A new connection with the same options (ioredis `Redis` and `Cluster` have it): the subscriber. */
  duplicate?: (override?: Partial<RedisOptions>) => Redis;
  nodes?: (role?: 'master') => RedisLike[];
  options?: { host?: string; port?: number };
};

export type RedisStoreOptions = (
  | {
      /** Your ioredis client (or Cluster). The store never closes it. */
      client: Redis | RedisLike;
      url?: never;
    }
  | {
      /** A `redis://` URL: the store makes (and on close, quits) its own client. */
      url: string;
      client?: never;
      /** Extra ioredis options for the store's own client. */
      redis?: RedisOptions;
    }
) & {
  /**
   * Keeps stores sharing one Redis apart (default `tokenkeeper`): every key starts with
   * `<namespace>:`. 1 to 40 letters, digits or `_`, starting with a letter.
   */
  namespace?: string;
  /**
   * @deprecated Use `namespace`. The exact start of every Redis key (`prefix: 'app:'` is
   * `namespace: 'app'`); kept for stores created before 0.2.
   */
  prefix?: string;
  /**
   * Called once if the server keeps no data across a restart (neither AOF nor RDB snapshots: a
   * restart would sign every session out). Default: `process.emitWarning` (a Node `warning`
   * event, printed once). The check asks the server once, on the store's first command; servers
   * that forbid `CONFIG GET` are not checked.
   */
  onWarning?: (warning: { code: 'TOKENKEEPER_REDIS_NOT_PERSISTENT'; message: string }) => void;
  /**
   * How long each call waits for the store's own client to make its first connection before
   * failing with `TOKENKEEPER_STORE_UNAVAILABLE` (default 10 s). Each call counts from its own
   * start, so a fleet starting on a busy machine is not failed by a connection that takes a few
   * seconds. Once connected, a call waits at most 2 s (or this, if shorter) for a lost connection
   * to come back: Redis being down is reported soon. Ignored with your own `client`.
   */
  connectWaitMs?: number;
};

// The version of the tokenkeeper record in `cur`, or nil when it is not one (another program's
// value, a value cut short): such a value is never overwritten, and deleted only unconditionally.
// Checked by shape (what this store writes: {"v":N,"e":...,"d":{...}}), not parsed: cheap.
const READ_VERSION = `
local function version_of(cur)
  local v = string.match(cur, '^{"v":(%d+),"e":[%dnul]+,"d":{')
  if v and string.sub(cur, -2) == '}}' and tonumber(v) >= 1 then return tonumber(v) end
  return nil
end`;

// SET the record, bumping its version; refuses when `ifVersion` is given and differs.
const SET_SCRIPT = script(`${READ_VERSION}
local cur = redis.call('GET', KEYS[1])
local ver = 0
if cur then
  ver = version_of(cur)
  if not ver then return {-2, 0} end
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= ver then return {-1, ver} end
local nv = ver + 1
local payload = '{"v":' .. nv .. ',' .. ARGV[2]
if ARGV[3] ~= '' then redis.call('SET', KEYS[1], payload, 'PX', ARGV[3]) else redis.call('SET', KEYS[1], payload) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return {nv, 0}`);

const DELETE_SCRIPT = script(`${READ_VERSION}
local cur = redis.call('GET', KEYS[1])
if not cur then
  if ARGV[1] ~= '' and ARGV[1] ~= '0' then return {-1, 0} end
  return {0, 0}
end
local ver = version_of(cur)
if ARGV[1] ~= '' then
  if not ver then return {-2, 0} end
  if tonumber(ARGV[1]) ~= ver then return {-1, ver} end
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return {1, ver or 0}`);

// DEL whatever is at the key (a corrupt value too), announcing it.
const REMOVE_SCRIPT = script(`
local n = redis.call('DEL', KEYS[1])
if n > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n`);

// Frees the lock only for its holder, and tells waiters (pub/sub) so they need not poll.
const RELEASE_SCRIPT = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`);

// Only while the key still holds our token: once it expired, someone may have held it since.
const EXTEND_SCRIPT = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);

/** How long an operation waits for the store's own client to connect at first, by default... */
const READY_WAIT_MS = 10_000;
/** ...and at most for a lost connection to come back. */
const RECONNECT_WAIT_MS = 2_000;

/**
 * Runs a Lua script by its SHA1 (EVALSHA), loading it with EVAL only when Redis does not know
 * it yet: the script text is not sent with every call.
 */
function script(source: string) {
  const sha = createHash('sha1').update(source).digest('hex');
  return async (client: RedisLike, keys: string[], args: (string | number)[]): Promise<unknown> => {
    try {
      return await client.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!/NOSCRIPT/.test((error as Error)?.message ?? '')) throw error;
      return client.eval(source, keys.length, ...keys, ...args);
    }
  };
}

/**
 * The locks held now under a store's namespace. Reads only (`SCAN` and `PTTL`), on a connection
 * of its own, one Redis node; for `tokenkeeper doctor`. A lock whose holder died ends with its
 * lease (Redis drops it), so none is ever stale.
 */
export async function redisLocks(url: string, options: { namespace?: string } = {}): Promise<HeldLock[]> {
  const { namespace } = namespaceOrAlias<string>(options, 'prefix', 'redisLocks');
  const prefix = `${namespace ?? 'tokenkeeper'}:`;
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
    retryStrategy: () => null,
  });
  client.on('error', () => {}); // surfaced by the command
  try {
    await client.connect();
    const match = `${escapeGlob(`${prefix}{`)}*${escapeGlob('}:l')}`;
    const out: HeldLock[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', match, 'COUNT', 500);
      cursor = next;
      for (const lock of batch) {
        const remainingMs = await client.pttl(lock);
        if (remainingMs > 0) out.push({ key: lock.slice(prefix.length + 1, -'}:l'.length), remainingMs });
      }
    } while (cursor !== '0');
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  } finally {
    client.disconnect();
  }
}

/** Escapes Redis glob characters, so a key is matched literally by SCAN MATCH. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\^]/g, (c) => `\\${c}`);
}

/**
 * A store in Redis, on ioredis. One Redis string per record (`SET ... PX` for TTL), writes and
 * compare-and-set in one Lua script, listing by `SCAN` with the key escaped so `*`, `?` and
 * `[` in it never widen a match, and a lease lock (`SET NX PX` with a random token; release and
 * extend only by the holder, by script). A record and its lock share a hash tag (`{key}`), so
 * on Redis Cluster both live on one slot.
 *
 * @example
 * import { redisStore } from 'tokenkeeper/redis';
 * const store = redisStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
 */
export function redisStore(options: RedisStoreOptions): Store {
  if (typeof options !== 'object' || options === null || (options.client === undefined && options.url === undefined)) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'redisStore() needs { client } or { url }.');
  }
  const { namespace, alias } = namespaceOrAlias<string>(options, 'prefix', 'redisStore');
  const prefix = alias ?? `${namespace ?? 'tokenkeeper'}:`;
  if (typeof prefix !== 'string') {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'redisStore({ prefix }) must be a string.');
  }
  if (options.onWarning !== undefined && typeof options.onWarning !== 'function') {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'redisStore({ onWarning }) must be a function.');
  }
  let client: RedisLike;
  const owned = options.client === undefined;
  if (owned) {
    if (typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        'redisStore({ url }) must be a redis:// or rediss:// URL.',
      );
    }
    // Fail fast while Redis is down instead of queueing forever; ioredis keeps reconnecting in
    // the background, so the same store works again when Redis is back.
    client = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: 5_000,
      retryStrategy: (times) => Math.min(times * 100, 2_000),
      lazyConnect: false,
      ...('redis' in options ? options.redis : {}),
    }) as unknown as RedisLike;
    (client as unknown as Redis).on('error', () => {}); // surfaced per command instead
  } else {
    client = options.client as RedisLike;
  }
  const where = (() => {
    if (owned) return describeServer(options.url as string);
    const o = (client as { options?: { host?: string; port?: number } }).options;
    return o?.host ? `redis://${o.host}:${o.port ?? 6379}` : 'redis';
  })();
  const name = `redis:${where}/${prefix}`;
  const recordKey = (key: string) => `${prefix}{${key}}:r`;
  const lockKey = (key: string) => `${prefix}{${key}}:l`;
  let closed = false;

  // Announcements on one channel per namespace: ["r", store, key] when a record was written or
  // deleted, ["l", store, key] when a lock was released. `store` tells our own apart.
  const channel = `${prefix}events`;
  const me = randomToken().slice(0, 12);
  const announce = (kind: 'r' | 'l', key: string) => JSON.stringify([kind, me, key]);
  const watchers = new Set<ChangeListener>();
  let subscriber: Redis | undefined;
  /** Subscribes once, on a connection of its own (ioredis subscribes again after a reconnect). */
  const listen = () => {
    if (subscriber !== undefined || closed || typeof client.duplicate !== 'function') return;
    try {
      subscriber = client.duplicate({ enableOfflineQueue: true, lazyConnect: false, maxRetriesPerRequest: null });
    } catch {
      return; // no events: waiters poll, as they always can
    }
    subscriber.on('error', () => {}); // a lost connection only means polling until it is back
    subscriber.subscribe(channel).then(
      () => {
        subscribed = true;
      },
      () => {},
    );
    subscriber.on('message', (_channel: string, message: string) => {
      let kind: unknown;
      let from: unknown;
      let key: unknown;
      try {
        [kind, from, key] = JSON.parse(message) as unknown[];
      } catch {
        return;
      }
      if (typeof key !== 'string') return;
      if (kind === 'l') lockWaiters.wake(key);
      else if (kind === 'r' && from !== me) for (const listener of watchers) listener(key);
    });
  };
  let subscribed = false;
  // ioredis subscribes again after a reconnect before it is ready: ready means announcements arrive.
  const lockWaiters = new ReleaseWakeups(
    () => listen(),
    () => subscribed && subscriber?.status === 'ready',
  );

  // The store's own client has no offline queue: wait (bounded) for it to connect, so a
  // store used right after creation, or during a reconnect, does not fail needlessly.
  // Every operation waiting for the connection shares one 'ready' listener, so 500 calls at
  // start-up add one listener, not 500 (and no MaxListenersExceededWarning); each waits at most
  // connectWaitMs from its own start.
  const connectWaitMs = options.connectWaitMs ?? READY_WAIT_MS;
  if (typeof connectWaitMs !== 'number' || !Number.isFinite(connectWaitMs) || connectWaitMs < 0) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'redisStore({ connectWaitMs }) must be a non-negative number of milliseconds.',
    );
  }
  let connected: Promise<void> | undefined;
  let everReady = false;
  const ready = (): Promise<void> | undefined => {
    if (!owned) return undefined;
    if (client.status === 'ready') {
      everReady = true;
      return undefined;
    }
    const redis = client as unknown as Redis;
    connected ??= new Promise<void>((resolve) => {
      redis.once('ready', () => {
        connected = undefined;
        everReady = true;
        resolve();
      });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waitMs = everReady ? Math.min(connectWaitMs, RECONNECT_WAIT_MS) : connectWaitMs;
    return Promise.race([
      connected,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs);
      }),
    ]).finally(() => clearTimeout(timer));
  };

  let checked = false;
  const checkPersistence = async () => {
    checked = true;
    try {
      const aof = (await client.config('GET', 'appendonly')) as string[];
      const save = (await client.config('GET', 'save')) as string[];
      if (aof[1] === 'yes' || (save[1] ?? '').trim() !== '') return;
    } catch {
      return; // CONFIG is often disabled on managed Redis: say nothing rather than guess
    }
    const warning = {
      code: 'TOKENKEEPER_REDIS_NOT_PERSISTENT' as const,
      message:
        `Redis at ${where} keeps no data across a restart (appendonly no, no save points): a restart signs every session out. ` +
        'Turn on appendonly yes (appendfsync always keeps every acknowledged write; everysec may lose the last second, and with it a rotated refresh token).',
    };
    if (options.onWarning) options.onWarning(warning);
    else
      (globalThis as { process?: { emitWarning?: (m: string, t: string) => void } }).process?.emitWarning?.(
        warning.message,
        'TokenkeeperWarning',
      );
  };

  const run = async <T>(key: string | undefined, op: () => Promise<T>): Promise<T> => {
    if (closed) throw closedError(name);
    try {
      await ready();
      if (!checked) void checkPersistence();
      return await op();
    } catch (error) {
      throw redisError(error, where, key);
    }
  };

  const decode = (key: string, raw: string): StoreEntry => {
    try {
      const parsed = JSON.parse(raw) as { v: number; e: number | null; d: unknown };
      if (Number.isSafeInteger(parsed.v) && parsed.v > 0 && isPlainObject(parsed.d)) {
        return parsed.e === null || parsed.e === undefined
          ? { value: parsed.d as StoreRecord, version: parsed.v }
          : { value: parsed.d as StoreRecord, version: parsed.v, expiresAt: parsed.e };
      }
    } catch {}
    throw corrupt(key, where, 'written by another program, or edited by hand');
  };

  return {
    name,
    capabilities: { crossProcessLock: true },

    async get(key: string): Promise<StoreEntry | undefined> {
      assertValidKey(key);
      const raw = await run(key, () => client.get(recordKey(key)));
      return raw === null ? undefined : decode(key, raw);
    },

    async set(key: string, value: StoreRecord, setOptions?: SetOptions): Promise<number> {
      assertValidKey(key);
      const expiresAt = checkSetOptions(setOptions, Date.now());
      const body = `"e":${expiresAt ?? 'null'},"d":${JSON.stringify(copyRecord(value))}}`;
      const ttl = setOptions?.ttlMs === undefined ? '' : String(Math.ceil(setOptions.ttlMs));
      const [version, current] = (await run(key, () =>
        SET_SCRIPT(client, [recordKey(key)], [setOptions?.ifVersion ?? '', body, ttl, channel, announce('r', key)]),
      )) as [number, number];
      if (version === -2) throw corrupt(key, where, 'a value tokenkeeper did not write');
      if (version === -1) throw versionConflict(key, setOptions?.ifVersion as number, current);
      return version;
    },

    async delete(key: string, deleteOptions?: DeleteOptions): Promise<boolean> {
      assertValidKey(key);
      checkDeleteOptions(deleteOptions);
      // Without a version to check, whatever is at the key goes, a corrupt value or one of
      // another Redis type too (Redis expires records itself: nothing expired is left to count).
      if (deleteOptions?.ifVersion === undefined) {
        return (
          ((await run(key, () => REMOVE_SCRIPT(client, [recordKey(key)], [channel, announce('r', key)]))) as number) > 0
        );
      }
      const [result, current] = (await run(key, () =>
        DELETE_SCRIPT(client, [recordKey(key)], [deleteOptions.ifVersion as number, channel, announce('r', key)]),
      )) as [number, number];
      if (result === -2) throw corrupt(key, where, 'a value tokenkeeper did not write');
      if (result === -1) throw versionConflict(key, deleteOptions?.ifVersion as number, current);
      return result === 1;
    },

    async *keys(keyPrefix = ''): AsyncIterable<string> {
      assertValidPrefix(keyPrefix);
      if (closed) throw closedError(name);
      const match = `${escapeGlob(`${prefix}{${keyPrefix}`)}*${escapeGlob('}:r')}`;
      const start = prefix.length + 1;
      const nodes = typeof client.nodes === 'function' ? client.nodes('master') : [client];
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, batch] = await run(undefined, () => node.scan(cursor, 'MATCH', match, 'COUNT', 500));
          cursor = next;
          for (const k of batch) yield k.slice(start, -3);
        } while (cursor !== '0');
      }
    },

    async lock(key: string, lockOpts?: LockOptions): Promise<Lease> {
      assertValidKey(key);
      lockOptions(lockOpts);
      if (!closed) listen(); // subscribed on the first lock taken, so waiters hear releases from the start
      const rk = lockKey(key);
      const value = JSON.stringify({ t: randomToken(), pid: process.pid, host: hostname() });
      let takenAt = 0;
      const length = await pollLock(
        key,
        lockOpts,
        async (leaseMs) => {
          takenAt = Date.now(); // Redis times the lease (PX); ours never ends later than its
          const ok = await run(key, () => client.set(rk, value, 'PX', leaseMs, 'NX'));
          return ok === 'OK' ? leaseMs : undefined;
        },
        async () => {
          const held = await client.get(rk);
          if (!held) return undefined;
          const h = JSON.parse(held) as { pid?: number; host?: string };
          return { pid: h.pid, host: h.host };
        },
        lockWaiters.wakeFor(key),
      );
      return createLease(key, length, takenAt, {
        release: async () => {
          await run(key, () => RELEASE_SCRIPT(client, [rk], [value, channel, announce('l', key)]));
        },
        renew: async (leaseMs) => (await run(key, () => EXTEND_SCRIPT(client, [rk], [value, leaseMs]))) === 1,
      });
    },

    /** Other processes' writes and deletes, announced over Redis pub/sub (see the class docs). */
    watch(listener: ChangeListener): () => void {
      listen();
      watchers.add(listener);
      return () => watchers.delete(listener);
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      watchers.clear();
      lockWaiters.clear();
      await Promise.all([subscriber === undefined ? undefined : shut(subscriber), owned ? shut(client) : undefined]);
    },
  };
}

/** How long `close()` lets a connected client finish its commands (QUIT) before cutting it. */
const QUIT_WAIT_MS = 1_000;

/**
 * Closes a client within a bound, whatever the state of the server. QUIT lets commands in flight
 * finish, but it fails at once on a disconnected client (no offline queue) or waits forever in a
 * queue (the subscriber's), while ioredis keeps reconnecting in the background, which keeps a
 * process alive: an app's graceful shutdown, or the CLI, would hang through an outage. So QUIT
 * only a ready client, briefly, and then always disconnect(), which stops the reconnecting.
 */
async function shut(client: Pick<RedisLike, 'quit' | 'disconnect' | 'status'>): Promise<void> {
  if (client.status === 'ready') {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      client.quit().catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, QUIT_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
  if (client.status !== 'end') client.disconnect();
}

function corrupt(key: string, where: string, what: string): TokenkeeperError {
  return corruptRecord(key, where, 'Redis value', what);
}

function redisError(error: unknown, where: string, key: string | undefined): unknown {
  if (error instanceof TokenkeeperError) return error;
  const e = error as { name?: string; message?: string; code?: string };
  if (e?.name === 'ReplyError' && /WRONGTYPE/.test(e.message ?? '')) {
    return corrupt(key ?? '', where, 'a Redis value of another type');
  }
  return new TokenkeeperError(
    'TOKENKEEPER_STORE_UNAVAILABLE',
    `Redis at ${where} did not answer (${e?.code ?? e?.message ?? String(error)}). The operation was not applied or its outcome is unknown; retry when Redis is back.`,
    { cause: redactedCause(error), key },
  );
}
