import { TokenkeeperError } from '../../errors.js';

/**
 * The longest key every built-in store accepts. PostgreSQL's btree index cannot hold much more
 * than 2,700 bytes per row, and a key is at most 3 UTF-8 bytes per UTF-16 unit below the surrogate
 * range, so 1,024 units is the portable bound.
 */
export const MAX_KEY_LENGTH = 1024;

// Lone surrogates do not survive UTF-8 (files, Redis, PostgreSQL), so two different keys could
// collide after encoding; NUL is refused by PostgreSQL text and C-string APIs.
const FORBIDDEN = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks a store key: a non-empty string of at most {@link MAX_KEY_LENGTH} UTF-16 units,
 * without NUL or unpaired surrogates. Every other character, `/`, `..`, `*`, `?`, `[` included,
 * is allowed: each store encodes keys so that none of them escapes its namespace.
 */
export function assertValidKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string') {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_KEY',
      `A store ${what} must be a string, got ${describeType(key)}.`,
    );
  }
  if (key.length === 0) {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_KEY', `A store ${what} must not be empty.`);
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_KEY',
      `A store ${what} is at most ${MAX_KEY_LENGTH} characters long, got ${key.length}. Use a shorter session id.`,
    );
  }
  if (FORBIDDEN.test(key)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_KEY',
      `A store ${what} must not contain NUL or unpaired surrogate characters.`,
    );
  }
}

/** Like {@link assertValidKey} but for listing prefixes, where the empty string means "all". */
export function assertValidPrefix(prefix: unknown): asserts prefix is string {
  if (prefix === '') return;
  assertValidKey(prefix, 'prefix');
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

/**
 * The store key of a drop-in's record: `namespace:kind:segment[:segment...]`, each segment with
 * `%` and `:` escaped, so no value a user or SDK passes can reach another kind's keys or the
 * session manager's (`namespace:s:<session id>`). Kinds in use: `a` and `u` (Podio), `t`
 * (Sharetribe), `v` and `idx` (Solid), `s` (sessions).
 */
export function dropInKey(namespace: string, kind: string, ...segments: string[]): string {
  const key = [namespace, kind, ...segments.map((s) => s.replace(/%/g, '%25').replace(/:/g, '%3A'))].join(':');
  assertValidKey(key);
  return key;
}

/**
 * Checks a `namespace` option (the key prefix an API or drop-in puts before its keys): a
 * non-empty string of at most 100 characters, without `:` (the separator that keeps one
 * namespace from reaching into another) and without what a key may not hold.
 */
export function checkNamespace(namespace: unknown, where: string): string {
  if (
    typeof namespace !== 'string' ||
    namespace.length === 0 ||
    namespace.length > 100 ||
    namespace.includes(':') ||
    FORBIDDEN.test(namespace)
  ) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${where}: namespace must be a non-empty string of at most 100 characters without ":", got ${
        typeof namespace === 'string' ? JSON.stringify(namespace.slice(0, 40)) : describeType(namespace)
      }.`,
    );
  }
  return namespace;
}

const STORE_NAMESPACE = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

/**
 * Checks the `namespace` option every store factory takes: the name that keeps stores sharing
 * one backend (a Redis server, a database, a folder, an origin's storage) apart. 1 to 40
 * letters, digits and `_`, starting with a letter, so it fits every backend's naming rules
 * (a Redis key prefix, an SQL table name, a folder, an IndexedDB database).
 */
export function storeNamespace(namespace: unknown, factory: string): string | undefined {
  if (namespace === undefined) return undefined;
  if (typeof namespace !== 'string' || !STORE_NAMESPACE.test(namespace)) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${factory}({ namespace }) must be 1 to 40 letters, digits or "_", starting with a letter; got ${
        typeof namespace === 'string' ? JSON.stringify(namespace.slice(0, 50)) : describeType(namespace)
      }.`,
    );
  }
  return namespace;
}

/**
 * Resolves a factory's `namespace` and the deprecated option it replaces (`prefix`, `table`,
 * `name`, `app`): both at once is an error, since they would disagree on where data lives.
 */
export function namespaceOrAlias<T>(
  options: { namespace?: unknown },
  alias: string,
  factory: string,
): { namespace?: string; alias?: T } {
  const namespace = storeNamespace(options.namespace, factory);
  const old = (options as Record<string, unknown>)[alias] as T | undefined;
  if (namespace !== undefined && old !== undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${factory}() takes namespace or its deprecated alias ${alias}, not both.`,
    );
  }
  return { namespace, alias: old };
}
