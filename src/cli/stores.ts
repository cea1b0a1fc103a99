import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type EncryptionOptions, encryptedStore } from '../codec/encrypted.js';
import { TokenkeeperError } from '../errors.js';
import { defaultStorePath } from '../store/file/index.js';
import { describeServer } from '../store/kit/describe.js';

import type { Store } from '../store/types.js';

/**
 * Stores named by URL, as the command line takes them:
 * `file:` (the default folder) or `file:/path`, `sqlite:/path/to.db`, `redis://host:port/db`
 * or `rediss://...`, `postgres://...` or `postgresql://...`. A `namespace` query parameter
 * names the store's namespace (the Redis key prefix, the table, the folder).
 */
export async function openStoreUrl(url: string): Promise<Store> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not echoed: a mistyped URL may still hold a password.
    throw usage('the store is not a URL: give file:[path], sqlite:path, redis://host:port or postgres://host/db');
  }
  const namespace = parsed.searchParams.get('namespace') ?? undefined;
  const ns = namespace === undefined ? {} : { namespace };
  switch (parsed.protocol) {
    case 'file:': {
      const { fileStore } = await import('../store/file/index.js');
      const path = decodeURIComponent(parsed.pathname);
      if (path !== '' && path !== '/') inExistingFolder(path, 'file:/path/to/store');
      return fileStore({ ...(path === '' || path === '/' ? {} : { path }), ...ns });
    }
    case 'sqlite:': {
      const { sqliteStore } = await import('../store/sqlite/index.js');
      const path = decodeURIComponent(parsed.pathname);
      if (path === '') throw usage('sqlite: needs a database file, such as sqlite:/var/lib/app/sessions.db');
      inExistingFolder(path, 'sqlite:/var/lib/app/sessions.db');
      return sqliteStore({ path, ...ns });
    }
    case 'redis:':
    case 'rediss:': {
      const { redisStore } = await import('../store/redis/index.js');
      parsed.searchParams.delete('namespace');
      return redisStore({ url: parsed.href, ...ns });
    }
    case 'postgres:':
    case 'postgresql:': {
      const { postgresStore } = await import('../store/postgres/index.js');
      parsed.searchParams.delete('namespace');
      return postgresStore({ connectionString: parsed.href, ...ns });
    }
    default:
      throw usage(
        `unknown store URL scheme ${parsed.protocol}: use file:, sqlite:, redis://, rediss://, postgres:// or postgresql://`,
      );
  }
}

/**
 * The store URL for an app's sessions, by the library's own rules: `--app <name>` is the
 * namespace the app gives its store (`fileStore({ namespace })`, `redisStore({ namespace })`...),
 * the same as `?namespace=` in the URL. Without either, a `file:` store whose folder holds no
 * records of its own but one app's folder (`apps/<name>`, where `fileStore({ namespace })` keeps
 * them) is that app's: found, not guessed; with several apps there, `--app` is required.
 */
export function withApp(url: string, app: string | undefined): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url; // openStoreUrl says what is wrong with it
  }
  const given = parsed.searchParams.get('namespace') ?? undefined;
  if (app !== undefined) {
    if (given !== undefined && given !== app) {
      throw usage(`--app ${app} and ?namespace=${given} name two different apps: give one`);
    }
    parsed.searchParams.set('namespace', app);
    return parsed.href;
  }
  if (given !== undefined || parsed.protocol !== 'file:') return url;
  const path = decodeURIComponent(parsed.pathname);
  const dir = path === '' || path === '/' ? defaultStorePath() : path;
  const entries = (where: string) => {
    try {
      return readdirSync(where, { withFileTypes: true });
    } catch {
      return [];
    }
  };
  if (entries(dir).some((e) => e.isFile() && e.name.endsWith('.json'))) return url;
  const apps = entries(join(dir, 'apps'))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  if (apps.length === 1) {
    parsed.searchParams.set('namespace', apps[0] as string);
    return parsed.href;
  }
  if (apps.length > 1) {
    throw usage(`${join(dir, 'apps')} holds the sessions of several apps (${apps.join(', ')}): give --app <name>`);
  }
  return url;
}

/**
 * A store path whose folder does not exist is a typo far more often than a wish: refused, so a
 * mistyped `--store` never creates folders and an empty store, then reports "no sessions".
 */
function inExistingFolder(path: string, example: string): void {
  const folder = dirname(resolve(path));
  if (!existsSync(folder)) {
    throw usage(
      `the folder ${folder} does not exist: check the store path (such as ${example}), or create the folder first`,
    );
  }
}

/** How the store is named to the user: no password, no query. */
export function describeStore(url: string): string {
  return describeServer(url);
}

/** The store seen through its encryption, when keys are given. */
export function withKeys(store: Store, encryption: EncryptionOptions | undefined): Store {
  return encryption === undefined ? store : encryptedStore(store, encryption);
}

export class UsageError extends Error {}

export function usage(message: string): UsageError {
  return new UsageError(message);
}

/** `--key id:base64` options as encryption keys; the first is the current one. */
export function parseKeys(keys: string[], context: string | undefined): EncryptionOptions | undefined {
  if (keys.length === 0) return undefined;
  const out: Record<string, string> = {};
  let current: string | undefined;
  for (const k of keys) {
    const colon = k.indexOf(':');
    if (colon <= 0) throw usage('a key is given as <id>:<base64 of 32 bytes>, such as k1:3q2+7w...');
    const id = k.slice(0, colon);
    const secret = k.slice(colon + 1);
    // A later key of the same id would silently replace an earlier one: for `rekey`, the old key
    // would replace the new one, every record would look "already under the new key", and the
    // operator would drop the only key that reads them.
    if (Object.hasOwn(out, id) && out[id] !== secret) {
      throw usage(
        `two different keys have the id ${JSON.stringify(id)}: every key needs an id of its own (a new key for rekey, such as k2, too)`,
      );
    }
    out[id] = secret;
    current ??= id;
  }
  try {
    return { keys: out, current: current as string, ...(context === undefined ? {} : { context }) };
  } catch (error) {
    throw error instanceof TokenkeeperError ? usage(error.message) : error;
  }
}
