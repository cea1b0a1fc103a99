import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { type LockHolder, LockTimeoutError } from '../../errors.js';
import { randomToken, sleep } from '../records.js';
import type { Lease } from '../types.js';

interface Owner {
  token: string;
  pid: number;
  host: string;
  expiresAt: number;
}

/** How long a stale-lock breaker may hold its guard before others may clear it. */
const BREAKER_LEASE_MS = 5_000;
const MAX_POLL_MS = 25;

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
  opts: { leaseMs: number; waitMs: number; signal?: AbortSignal | undefined },
): Promise<Lease> {
  const token = randomToken();
  const deadline = Date.now() + opts.waitMs;
  let poll = 1;
  for (;;) {
    opts.signal?.throwIfAborted();
    const owner: Owner = { token, pid: process.pid, host: hostname(), expiresAt: Date.now() + opts.leaseMs };
    if (await createExclusive(path, owner)) return fileLease(path, key, owner);
    const current = await readOwner(path);
    const now = Date.now();
    if (current === undefined) continue; // released between our two calls
    if (current.expiresAt <= now) {
      await withBreaker(path, async () => {
        const again = await readOwner(path);
        if (again?.token === current.token && again.expiresAt <= Date.now()) await unlinkQuiet(path);
      });
      continue;
    }
    if (now >= deadline) throw new LockTimeoutError(key, opts.waitMs, holderOf(current));
    const jitter = Math.random() * poll;
    await sleep(Math.max(1, Math.min(poll + jitter, deadline - now, current.expiresAt - now)), opts.signal);
    poll = Math.min(poll * 2, MAX_POLL_MS);
  }
}

function fileLease(path: string, key: string, owner: Owner): Lease {
  return {
    key,
    get expiresAt() {
      return owner.expiresAt;
    },
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
    async extend(ms?: number) {
      const leaseMs = ms ?? Math.max(1, owner.expiresAt - Date.now());
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
  };
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
    const other = await readOwner(guard);
    // A breaker that died inside its few milliseconds of work: clear its guard.
    if (other !== undefined && other.expiresAt <= Date.now()) await unlinkQuiet(guard);
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

/**
 * The owner of a lock file; undefined if there is none. A file we cannot parse (edited by hand,
 * or from a foreign tool) counts as a lease that ends a default lease after its last change.
 */
async function readOwner(path: string): Promise<Owner | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const o = JSON.parse(text) as Owner;
    if (typeof o.token === 'string' && typeof o.expiresAt === 'number') return o;
  } catch {}
  const st = await fs.stat(path).catch(() => undefined);
  if (st === undefined) return undefined;
  return { token: `unparseable:${st.mtimeMs}:${st.ino}`, pid: 0, host: '', expiresAt: st.mtimeMs + 30_000 };
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
