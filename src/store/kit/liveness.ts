import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Who holds a lock, as the file and SQLite stores record it: enough for another process on the
 * same host to tell that the holder is gone without waiting for its lease to end.
 */
export interface ProcessIdentity {
  pid: number;
  host: string;
  /**
   * When the process started, in clock ticks since boot (Linux `/proc/<pid>/stat`), so a pid
   * the system gave to a new process (or a container restarted as pid 1) is not taken for the
   * holder. Undefined where the platform does not say.
   */
  start?: number;
}

/** The start time of process `pid` (clock ticks since boot), where `/proc` tells. */
export function processStart(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[19]); // field 22 of the line, counting pid as 1
  return Number.isSafeInteger(start) ? start : undefined;
}

let me: ProcessIdentity | undefined;

/** This process. */
export function currentProcess(): ProcessIdentity {
  me ??= { pid: process.pid, host: hostname(), start: processStart(process.pid) };
  return me;
}

/**
 * True only when `holder` surely no longer runs: it was on this host, and its pid is gone or
 * now belongs to a process started at another time. False whenever that cannot be known (another
 * host, a platform without `/proc` and a live pid, a record without a start time): then only the
 * lease's end frees the lock.
 */
export function holderGone(holder: { pid?: number | null; host?: string | null; start?: number | null }): boolean {
  const self = currentProcess();
  if (holder.host !== self.host || typeof holder.pid !== 'number' || !Number.isSafeInteger(holder.pid)) return false;
  if (holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0); // signal 0: only asks whether the pid exists
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: it exists, as another user
  }
  if (typeof holder.start !== 'number') return false;
  const start = holder.pid === self.pid ? self.start : processStart(holder.pid);
  return start !== undefined && start !== holder.start;
}

/**
 * A lock a store holds now, as `tokenkeeper doctor` shows it; each store that can list its locks
 * reads them with a function of its own (`fileLocks`, `sqliteLocks`, `postgresLocks`, `redisLocks`).
 */
export interface HeldLock {
  key: string;
  /** The holder, where the store records it (not Redis: its locks carry a random token only). */
  pid?: number;
  host?: string;
  /** Until the lease ends; negative for a lease that ended unreleased (its holder died). */
  remainingMs: number;
}

/** A lock table's row (SQLite, PostgreSQL) as a {@link HeldLock}. */
export function heldLock(key: string, pid: number | null, host: string | null, remainingMs: number): HeldLock {
  return { key, ...(pid === null ? {} : { pid }), ...(host === null ? {} : { host }), remainingMs };
}
