import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TokenkeeperError } from '../errors.js';
import { defaultStorePath, type FileStoreOptions, fileStore } from '../store/file/index.js';
import { checkNamespace, describeType, dropInKey } from '../store/kit/keys.js';
import { isPlainObject, parseJson } from '../store/kit/records.js';
import { memoryStore } from '../store/memory.js';
import type { Store, StoreRecord } from '../store/types.js';

/** The token object the Sharetribe SDKs store: the token endpoint's JSON, `token_type` included. */
export type SharetribeToken = Record<string, unknown>;

/** What the Sharetribe integration SDK expects as `tokenStore`. */
export interface SharetribeTokenStore {
  getToken(): Promise<SharetribeToken | null>;
  setToken(token: SharetribeToken): Promise<void>;
  removeToken(): Promise<void>;
}

export interface SharetribeTokenStoreOptions {
  /** Key prefix in the store (default `sharetribe`; no `:`), so apps and tenants never meet. */
  namespace?: string;
  /** Which token, when one store holds several (for example one per marketplace; default `token`). */
  key?: string;
}

/**
 * A Sharetribe token store backed by any tokenkeeper store. The SDK calls `getToken` and
 * `removeToken` detached from the object, so none of the methods use `this`. The token is kept
 * exactly as the SDK gave it (`token_type` included, which the SDK needs back).
 *
 * @example
 * const sdk = sharetribeIntegrationSdk.createInstance({ clientId, clientSecret,
 *   tokenStore: sharetribeTokenStore(redisStore({ url }), { key: marketplaceId }) });
 */
export function sharetribeTokenStore(store: Store, options: SharetribeTokenStoreOptions = {}): SharetribeTokenStore {
  const namespace = checkNamespace(options.namespace ?? 'sharetribe', 'sharetribeTokenStore()');
  const name = options.key ?? 'token';
  const key = dropInKey(namespace, 't', name);
  // Before 0.2 the key was `namespace:name`: still read (and moved on the next write) where that
  // cannot be another drop-in's key, that is when the name has no `:`.
  const legacy = typeof name === 'string' && !name.includes(':') ? `${namespace}:${name}` : undefined;
  return {
    async getToken() {
      let entry = await store.get(key);
      if (entry === undefined && legacy !== undefined) entry = await store.get(legacy);
      if (entry === undefined) return null;
      if (entry.value.format !== 'sharetribe/1' || !isPlainObject(entry.value.token)) {
        throw new TokenkeeperError(
          'TOKENKEEPER_CORRUPT_RECORD',
          'The stored Sharetribe token is not one sharetribeTokenStore wrote. Remove it (removeToken) to recover.',
          { key },
        );
      }
      return { ...(entry.value.token as SharetribeToken) };
    },
    async setToken(token: SharetribeToken) {
      if (!isPlainObject(token) || typeof token.access_token !== 'string') {
        throw new TokenkeeperError(
          'TOKENKEEPER_INVALID_TOKEN_RESPONSE',
          `setToken() needs the token endpoint's JSON object with an access_token, got ${describeType(token)}.`,
        );
      }
      await store.set(key, { format: 'sharetribe/1', token: token as StoreRecord });
      if (legacy !== undefined) await store.delete(legacy);
    },
    async removeToken() {
      await store.delete(key);
      if (legacy !== undefined) await store.delete(legacy);
    },
  };
}

/** Like the SDK's `tokenStore.memoryStore()`: the token lives in this process. */
export function sharetribeMemoryStore(): SharetribeTokenStore {
  return sharetribeTokenStore(memoryStore());
}

/**
 * Like the SDK's `tokenStore.fileStore()`, only durable and safe: atomic writes (a crash never
 * leaves the half-written JSON that makes every later SDK call fail), 0600 files in a 0700
 * directory, usable by several processes at once. Default directory:
 * `<tokenkeeper's default store path>/sharetribe`.
 */
export function sharetribeFileStore(options: FileStoreOptions = {}): SharetribeTokenStore {
  return sharetribeTokenStore(fileStore({ ...options, path: options.path ?? join(defaultStorePath(), 'sharetribe') }));
}

/**
 * Where the Sharetribe integration SDK's own `fileStore()` keeps its token:
 * `~/.config/flex-integration-sdk-nodejs/file-store-token.json` on Linux (its docs say
 * `flex-integration-sdk`), `~/.config/flex-integration-sdk/file-store-token.json` on macOS.
 */
export function sharetribeSdkTokenFile(
  env: Record<string, string | undefined> = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  if (platform === 'darwin')
    return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'flex-integration-sdk', 'file-store-token.json');
  if (platform === 'win32') {
    return join(
      env.APPDATA || join(home, 'AppData', 'Roaming'),
      'flex-integration-sdk-nodejs',
      'Config',
      'file-store-token.json',
    );
  }
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'flex-integration-sdk-nodejs', 'file-store-token.json');
}

/**
 * Moves the token of the SDK's own file store into a tokenkeeper token store. Returns false if
 * there is no such file. The SDK's file is left in place; delete it once you have switched.
 * @throws TokenkeeperError `TOKENKEEPER_CORRUPT_RECORD` if the file is not the SDK's token JSON.
 */
export async function importSharetribeTokenFile(
  target: SharetribeTokenStore,
  path: string = sharetribeSdkTokenFile(),
): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  const token = parseJson(text);
  if (!isPlainObject(token) || typeof token.access_token !== 'string') {
    throw new TokenkeeperError(
      'TOKENKEEPER_CORRUPT_RECORD',
      `${path} is not a Sharetribe token file (truncated by a crash mid-write, as the SDK's file store can leave it?). Nothing was imported; delete it and let the SDK authenticate again.`,
    );
  }
  await target.setToken(token);
  return true;
}
