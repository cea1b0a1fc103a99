import { TokenkeeperError } from '../../errors.js';
import type { DeleteOptions, SetOptions } from '../types.js';
import { versionConflict } from './records.js';

/**
 * What a store found at a key before a write: nothing (or an expired record), a record at a
 * version, or something it cannot read as its record (the error says what).
 */
export type Stored = { readonly version: number } | { readonly corrupt: TokenkeeperError } | undefined;

/**
 * Reads what is stored for a write decision: a `TOKENKEEPER_CORRUPT_RECORD` from `read` becomes
 * `{ corrupt }` (so {@link planDelete} can still remove it); any other error passes.
 */
export async function readStored(read: () => Promise<{ version: number } | undefined>): Promise<Stored> {
  try {
    return await read();
  } catch (error) {
    return corruptOrThrow(error);
  }
}

/**
 * The version a `set` writes over `stored`, after the checks every store makes the same way:
 * - a corrupt record is never overwritten: `TOKENKEEPER_CORRUPT_RECORD` (delete it to recover);
 * - `ifVersion` must be the stored version, `0` meaning absent: `TOKENKEEPER_VERSION_CONFLICT`.
 *
 * @param floor a version the new one must exceed (a store that remembers the version of an
 *   expired record passes it, so versions never repeat); default the stored version
 */
export function planSet(key: string, stored: Stored, options: SetOptions | undefined, floor?: number): number {
  if (stored !== undefined && 'corrupt' in stored) throw stored.corrupt;
  const version = stored?.version ?? 0;
  checkVersion(key, options?.ifVersion, version);
  return Math.max(version, floor ?? 0) + 1;
}

/**
 * Whether a `delete` removes something, after the same checks: with `ifVersion`, a corrupt
 * record is `TOKENKEEPER_CORRUPT_RECORD` and another version `TOKENKEEPER_VERSION_CONFLICT`;
 * without it (or with `force`) anything stored is removed, a corrupt record too: that is how a
 * user recovers from one.
 */
export function planDelete(key: string, stored: Stored, options: DeleteOptions | undefined): boolean {
  if (stored !== undefined && 'corrupt' in stored) {
    if (options?.ifVersion !== undefined) throw stored.corrupt;
    return true;
  }
  checkVersion(key, options?.ifVersion, stored?.version ?? 0);
  return stored !== undefined;
}

/** `TOKENKEEPER_VERSION_CONFLICT` unless `ifVersion` is absent or equals `current` (0: no record). */
export function checkVersion(key: string, ifVersion: number | undefined, current: number): void {
  if (ifVersion !== undefined && ifVersion !== current) throw versionConflict(key, ifVersion, current);
}

/** {@link readStored} for a backend read inside a synchronous transaction (SQLite, IndexedDB). */
export function readStoredSync(read: () => { version: number } | undefined): Stored {
  try {
    return read();
  } catch (error) {
    return corruptOrThrow(error);
  }
}

/** A corrupt-record error as what is stored; any other error passes on. */
function corruptOrThrow(error: unknown): Stored {
  if (error instanceof TokenkeeperError && error.code === 'TOKENKEEPER_CORRUPT_RECORD') return { corrupt: error };
  throw error;
}
