import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { type LockHolder, LockTimeoutError } from '../../errors.js';
import { createLease } from '../kit/lease.js';
import { currentProcess, holderGone } from '../kit/liveness.js';
import { type LockWake, WakeableSleep } from '../kit/poll-lock.js';
import { randomToken, sleep } from '../kit/records.js';
import type { Lease } from '../types.js';

interface Owner {
  token: string;
  pid: number;
  host: string;
  /** The holder's process start time (see {@link ProcessIdentity}), where the platform tells. */
  start?: number;
  expiresAt: number;
}

/** How long a stale-lock breaker may hold its guard before others may clear it. */
const BREAKER_LEASE_MS = 5_000;
const MAX_POLL_MS = 25;
/** With directory events, polling is only the safety net for a missed one. */
const MAX_POLL_WITH_WAKE_MS = 200;
/**
 * How long a lock file we cannot read counts as held after its last change, where no lease
 * length is known (listing locks). A taker counts it as held for one lease of its own: a
 * tokenkeeper holder never leaves a lock file half-written (it appears by `link`, changes by
 * `rename`), so junk there (an empty file, garbage, a dangling symlink) is no live holder's, and
 * waiting longer would only make the key unwritable for longer.
 */
const FOREIGN_LEASE_MS = 30_000;

/**
 * A cross-process lease on `path`. The lock file appears with its owner record already in it
 * (written to a temp file, then hard-linked into place: `link` fails if the name exists, so
 * exactly one process wins). An expired lease is broken only under a second lock (the
 * "breaker"), after checking again that it is the same expired lease, so two processes can never
 * both break a lock and both take it. Release and extend also check ownership under the
 * breaker, so a holder whose lease ended never removes its successor's lock.
 */
export async function acquireFileLock(
  path: string,
  key: string,
  opts: { leaseMs: number; waitMs: number; signal?: AbortSignal | undefined; wake?: LockWake },
): Promise<Lease> {
  const token = randomToken();
  const deadline = Date.now() + opts.waitMs;
  const maxPoll = opts.wake ? MAX_POLL_WITH_WAKE_MS : MAX_POLL_MS;
  const alarm = new WakeableSleep(opts.wake);
  try {
    return await acquire();
  } finally {
    alarm.stop();
  }

  async function acquire(): Promise<Lease> {
    let poll = 1;
    // How the lock became free: what we broke ourselves, or what we last saw there. One host, one
    // clock: a lock taken before the last holder's lease could end was let go (or its holder died).
    let broken: 'gone' | 'expired' | undefined;
    let lastSeen: Owner | undefined;
    // Every round that does not take the lock sleeps and checks the deadline, whatever sits at
    // `path` (junk that can be neither read nor broken must not spin a core past waitMs).
    for (;;) {
      opts.signal?.throwIfAborted();
      alarm.woken = false;
      const owner: Owner = { token, ...currentProcess(), expiresAt: Date.now() + opts.leaseMs };
      if (await createExclusive(path, owner)) {
        const predecessor =
          broken ?? (lastSeen === undefined || Date.now() < lastSeen.expiresAt ? 'released' : 'expired');
        return fileLease(path, key, owner, opts.leaseMs, predecessor);
      }
      const current = await readOwner(path, opts.leaseMs);
      lastSeen = current;
      broken = undefined;
      // A lease that ended, or one whose holder on this host is gone (killed, crashed): break it.
      const free = (o: Owner) => o.expiresAt <= Date.now() || holderGone(o);
      if (current !== undefined && free(current)) {
        const broke = await withBreaker(path, async () => {
          const again = await readOwner(path, opts.leaseMs);
          if (again?.token === current.token && free(again)) {
            broken = again.expiresAt <= Date.now() ? 'expired' : 'gone';
            await unlinkQuiet(path);
          }
        });
        if (broke && (await readOwner(path, opts.leaseMs)) === undefined) continue; // broken: try at once
      }
      const now = Date.now();
      if (now >= deadline) {
        throw new LockTimeoutError(key, opts.waitMs, current === undefined ? undefined : holderOf(current));
      }
      if (alarm.woken) continue; // the lock file went away while we looked: try again at once
      const jitter = Math.random() * poll;
      const until = current === undefined || current.expiresAt <= now ? poll + jitter : current.expiresAt - now;
      await alarm.sleep(Math.max(1, Math.min(poll + jitter, deadline - now, until)), opts.signal);
      poll = alarm.woken ? 1 : Math.min(poll * 2, maxPoll);
    }
  }
}

function fileLease(path: string, key: string, owner: Owner, length: number, predecessor: Lease['predecessor']): Lease {
  return createLease(
    key,
    length,
    owner.expiresAt - length,
    {
      async release() {
        // Retry for a while if a breaker is busy; if it never frees, leave the lock to expire
        // rather than remove a lock that may no longer be ours.
        for (let i = 0; i < 200; i++) {
          const done = await withBreaker(path, async () => {
            if ((await readOwner(path))?.token === owner.token) await unlinkQuiet(path);
          });
          if (done) return;
          await sleep(5);
        }
      },
      async renew(leaseMs) {
        for (let i = 0; i < 200; i++) {
          let extended = false;
          const done = await withBreaker(path, async () => {
            if ((await readOwner(path))?.token !== owner.token) return;
            const next = { ...owner, expiresAt: Date.now() + leaseMs };
            await replaceAtomically(path, next);
            owner.expiresAt = next.expiresAt;
            extended = true;
          });
          if (done) return extended;
          await sleep(5);
        }
        return false;
      },
    },
    predecessor,
  );
}

/** Runs `fn` under the breaker guard of `path`; false (without running it) if the guard is busy. */
async function withBreaker(path: string, fn: () => Promise<void>): Promise<boolean> {
  const guard = `${path}.break`;
  const me: Owner = {
    token: randomToken(),
    pid: process.pid,
    host: hostname(),
    expiresAt: Date.now() + BREAKER_LEASE_MS,
  };
  if (!(await createExclusive(guard, me))) {
    const other = await readOwner(guard, BREAKER_LEASE_MS);
    // A breaker that died inside its few milliseconds of work: clear its guard (junk that cannot
    // be removed, a directory say, just keeps the guard busy: callers are bounded anyway).
    if (other !== undefined && other.expiresAt <= Date.now()) await unlinkQuiet(guard).catch(() => {});
    return false;
  }
  try {
    await fn();
  } finally {
    await unlinkQuiet(guard);
  }
  return true;
}

async function createExclusive(path: string, owner: Owner): Promise<boolean> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(owner), { mode: 0o600, flag: 'wx' });
  try {
    await fs.link(tmp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlinkQuiet(tmp);
  }
}

async function replaceAtomically(path: string, owner: Owner): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(owner), { mode: 0o600, flag: 'wx' });
  await fs.rename(tmp, path);
}

/** What sits at a path we own is not a regular file (a symlink, a FIFO, a directory, ...). */
export class NotRegular extends Error {
  constructor(readonly what: string) {
    super(what);
  }
}

/**
 * The text of the regular file at `path`, or undefined if there is none. Never follows a symlink
 * (`O_NOFOLLOW`), never blocks on a FIFO (`O_NONBLOCK`), and refuses anything but a regular file
 * with {@link NotRegular}: junk planted in the store's folder can neither redirect nor hang a read.
 */
export async function readRegularFile(path: string): Promise<string | undefined> {
  try {
    // One readFile with these flags (the hot path of every get): a FIFO without a writer reads
    // as empty, so it is never waited on; links and directories fail to open.
    const text = await fs.readFile(path, { encoding: 'utf8', flag: READ_FLAGS });
    if (text === '') await assertRegular(path); // empty: a FIFO, or a truncated file
    return text;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP' || code === 'EMLINK') throw new NotRegular('a regular file but a symbolic link');
    if (code === 'EISDIR') throw new NotRegular('a regular file but a directory');
    if (code === 'ENXIO' || code === 'EAGAIN') throw new NotRegular('a regular file (a FIFO, socket or device)');
    throw error;
  }
}

const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

async function assertRegular(path: string): Promise<void> {
  const st = await fs.lstat(path).catch(() => undefined);
  if (st !== undefined && !st.isFile()) throw new NotRegular('a regular file (a FIFO, socket or device)');
}

/**
 * The owner of a lock file; undefined if there is none. Anything we cannot read as an owner (a
 * file edited by hand or from a foreign tool, a symlink, a FIFO, a directory) counts as a lease
 * that ends a default lease after its last change: then it is broken like any stale lock, or, if
 * it cannot be removed, waited on until `waitMs`.
 */
/** The owner record of a lock file; undefined when there is none (released) or it is unreadable. */
export async function readOwner(path: string, junkLeaseMs = FOREIGN_LEASE_MS): Promise<Owner | undefined> {
  let text: string | undefined;
  try {
    text = await readRegularFile(path);
  } catch (error) {
    if (!(error instanceof NotRegular)) throw error;
  }
  if (text !== undefined) {
    try {
      const o = JSON.parse(text) as Owner;
      if (typeof o.token === 'string' && typeof o.expiresAt === 'number' && Number.isFinite(o.expiresAt)) return o;
    } catch {}
  }
  const st = await fs.lstat(path).catch(() => undefined);
  if (st === undefined) return undefined;
  return { token: `foreign:${st.mtimeMs}:${st.ino}`, pid: 0, host: '', expiresAt: st.mtimeMs + junkLeaseMs };
}

function holderOf(owner: Owner): LockHolder {
  return owner.pid ? { pid: owner.pid, host: owner.host, expiresAt: owner.expiresAt } : { expiresAt: owner.expiresAt };
}

async function unlinkQuiet(path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
