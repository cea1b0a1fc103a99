import { TokenkeeperError } from '../../errors.js';
import type { DeleteOptions, LockOptions, SetOptions, StoreEntry, StoreRecord } from '../types.js';
import { describeType } from './keys.js';

export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_WAIT_MS = 30_000;
const MAX_DEPTH = 32;

/**
 * Checks that `value` is a plain JSON object and returns a deep copy of it, frozen when asked,
 * so a caller mutating its object afterwards cannot change what was stored.
 * @throws TokenkeeperError `TOKENKEEPER_INVALID_RECORD`
 */
export function copyRecord(value: unknown, freeze = false): StoreRecord {
  if (!isPlainObject(value)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_RECORD',
      `A store record must be a plain JSON object, got ${describeType(value)}.`,
    );
  }
  try {
    return copyJson(value, freeze, 0) as StoreRecord;
  } catch (error) {
    if (!(error instanceof BadValue)) throw error;
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_RECORD',
      `A store record must hold only JSON values; ${error.path.join('.') || 'the record'} is ${error.what}.`,
    );
  }
}

/** Thrown inside the copy; the path is collected while unwinding, so the hot path builds none. */
class BadValue {
  readonly path: string[] = [];
  constructor(readonly what: string) {}
}

function copyJson(value: unknown, freeze: boolean, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new BadValue('a non-finite number');
      return value;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_DEPTH) throw new BadValue(`nesting deeper than ${MAX_DEPTH} levels`);
      if (Array.isArray(value)) {
        const out = new Array(value.length);
        for (let i = 0; i < value.length; i++) out[i] = copyChild(value[i], freeze, depth, `[${i}]`);
        return freeze ? Object.freeze(out) : out;
      }
      if (!isPlainObject(value)) throw new BadValue(`a ${value.constructor?.name ?? 'non-plain'} object`);
      const out: Record<string, unknown> = {};
      for (const k in value) {
        const v = (value as Record<string, unknown>)[k];
        if (v !== undefined) out[k] = copyChild(v, freeze, depth, k); // undefined is dropped, as JSON.stringify does
      }
      return freeze ? Object.freeze(out) : out;
    }
    default:
      throw new BadValue(describeType(value));
  }
}

function copyChild(value: unknown, freeze: boolean, depth: number, segment: string): unknown {
  if (typeof value === 'string' || typeof value === 'boolean' || value === null) return value;
  try {
    return copyJson(value, freeze, depth + 1);
  } catch (error) {
    if (error instanceof BadValue) error.path.unshift(segment);
    throw error;
  }
}

/** The value `text` holds as JSON, or `undefined` if it is not JSON (truncated, hand-edited). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Validates `set` options; returns the absolute expiry, if any. */
export function checkSetOptions(options: SetOptions | undefined, now: number): number | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'set() options must be an object.');
  }
  checkIfVersion(options.ifVersion);
  if (options.ttlMs === undefined) return undefined;
  if (typeof options.ttlMs !== 'number' || !Number.isFinite(options.ttlMs) || options.ttlMs <= 0) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `ttlMs must be a positive number of milliseconds, got ${String(options.ttlMs)}.`,
    );
  }
  return now + Math.ceil(options.ttlMs);
}

export function checkDeleteOptions(options: DeleteOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'delete() options must be an object.');
  }
  checkIfVersion(options.ifVersion);
  if (options.force !== undefined && typeof options.force !== 'boolean') {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'delete() option force must be a boolean.');
  }
  if (options.force && options.ifVersion !== undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'delete() takes force or ifVersion, not both: force removes whatever is stored, whatever its version.',
    );
  }
}

function checkIfVersion(v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `ifVersion must be a version read from the store, or 0 for "must not exist"; got ${String(v)}.`,
    );
  }
}

export function versionConflict(key: string, expected: number, actual: number): TokenkeeperError {
  return new TokenkeeperError(
    'TOKENKEEPER_VERSION_CONFLICT',
    `The record changed since it was read (expected version ${expected}, found ${
      actual === 0 ? 'none' : actual
    }). Read it again and retry.`,
    { key },
  );
}

/** Validated lock options with defaults applied. */
export function lockOptions(options: LockOptions | undefined): Required<Omit<LockOptions, 'signal'>> & {
  signal?: AbortSignal;
} {
  const leaseMs = options?.leaseMs ?? DEFAULT_LEASE_MS;
  const waitMs = options?.waitMs ?? DEFAULT_WAIT_MS;
  for (const [name, v] of [
    ['leaseMs', leaseMs],
    ['waitMs', waitMs],
  ] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (name === 'leaseMs' && v === 0)) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        `${name} must be a ${name === 'leaseMs' ? 'positive' : 'non-negative'} number of milliseconds, got ${String(v)}.`,
      );
    }
  }
  return { leaseMs, waitMs, signal: options?.signal };
}

export function closedError(name: string): TokenkeeperError {
  return new TokenkeeperError('TOKENKEEPER_STORE_CLOSED', `The store ${name} is closed; create a new one.`);
}

/** A random token identifying one lease holder (Web Crypto: works in browsers and Node). */
export function randomToken(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The entry of a database row that keeps the record as JSON text (PostgreSQL, SQLite). A row
 * edited by hand into something else is `TOKENKEEPER_CORRUPT_RECORD` naming the key and `where`.
 */
export function rowEntry(
  key: string,
  where: string,
  row: { value: string; version: number | string; expires_at: number | string | null },
): StoreEntry {
  const value = typeof row.value === 'string' ? parseJson(row.value) : undefined;
  const version = row.version === null ? Number.NaN : Number(row.version);
  // A version that is not a positive integer (NULL, edited by hand) would make every
  // compare-and-set fail after the caller acted on the record: refuse the row up front.
  if (!isPlainObject(value) || !Number.isSafeInteger(version) || version < 1) throw corruptRecord(key, where, 'row');
  const entry: StoreEntry = { value: value as StoreRecord, version };
  if (row.expires_at !== null) entry.expiresAt = Number(row.expires_at);
  return entry;
}

/**
 * `TOKENKEEPER_CORRUPT_RECORD` for what is stored under `key` in `where`: the `what` (a row, a
 * file, an entry) is not a record the store wrote, for the reason in `detail` if given.
 */
export function corruptRecord(key: string, where: string, what: string, detail?: string): TokenkeeperError {
  return new TokenkeeperError(
    'TOKENKEEPER_CORRUPT_RECORD',
    `The ${what} for key ${JSON.stringify(key.slice(0, 80))} in ${where} is not a tokenkeeper record (${
      detail ?? 'not a JSON object with a valid version: edited by hand?'
    }). Other keys are unaffected. Writes to this key are refused, so nothing that could still be recovered from it by hand is overwritten; ` +
      'delete the key (store.delete(key)) to use it again.',
    { key },
  );
}
