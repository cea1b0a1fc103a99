import type { OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed } from '@modelcontextprotocol/sdk/shared/auth.js';
import { TokenkeeperError } from '../../errors.js';
import type { Store, StoreRecord } from '../../store/types.js';
import { withLock } from '../../store/with-lock.js';

/**
 * What the MCP SDK asks a provider to keep besides the tokens, for one MCP server: the
 * discovery results, the client registered at its authorization server, and the PKCE verifier
 * of a login the SDK started. One record per MCP server (and session id), beside the session,
 * written under the store's lock and read back checked: a record that is not what we wrote is a
 * typed error, never a client id or endpoint we would use.
 */
export interface McpState {
  /** The MCP server the record belongs to (its URL without query or fragment). */
  serverUrl: string;
  discovery?: OAuthDiscoveryState;
  /** As the SDK gave it: stamped with `issuer`, the authorization server it is registered at. */
  client?: OAuthClientInformationMixed;
  verifier?: string;
  updatedAt: number;
}

const VERSION = 1;

export class McpStateStore {
  readonly #store: Store;
  readonly #key: string;
  readonly #serverUrl: string;

  constructor(store: Store, key: string, serverUrl: string) {
    this.#store = store;
    this.#key = key;
    this.#serverUrl = serverUrl;
  }

  get key(): string {
    return this.#key;
  }

  async read(): Promise<McpState> {
    const entry = await this.#store.get(this.#key);
    if (entry === undefined) return { serverUrl: this.#serverUrl, updatedAt: 0 };
    return this.#decode(entry.value);
  }

  /**
   * Changes the record under the store's lock, from what is stored now (another process may
   * have written since we read). `change` returns `false` to write nothing; a throw writes
   * nothing either.
   */
  update<T>(change: (state: McpState) => Promise<T | false> | T | false): Promise<T | false> {
    return withLock(this.#store, this.#key, async () => {
      const state = await this.read();
      const out = await change(state);
      if (out === false) return false;
      state.updatedAt = Date.now();
      await this.#store.set(this.#key, encode(state));
      return out;
    });
  }

  #decode(value: StoreRecord): McpState {
    const bad = (why: string) =>
      new TokenkeeperError(
        'TOKENKEEPER_CORRUPT_RECORD',
        `The MCP client record ${JSON.stringify(this.#key)} is not one tokenkeeper wrote (${why}). ` +
          'Delete it (the client registers again at the next login), or restore it from a backup.',
        { key: this.#key },
      );
    if (value.v !== VERSION) throw bad(`version ${JSON.stringify(value.v)}`);
    if (value.serverUrl !== this.#serverUrl) {
      throw new TokenkeeperError(
        'TOKENKEEPER_SESSION_MISMATCH',
        `The MCP client record ${JSON.stringify(this.#key)} belongs to another MCP server: give this server its own sessionId.`,
        { key: this.#key },
      );
    }
    const state: McpState = { serverUrl: this.#serverUrl, updatedAt: num(value.updatedAt) ?? 0 };
    const client = value.client;
    if (client !== undefined) {
      if (!isObject(client) || typeof client.client_id !== 'string' || client.client_id === '') {
        throw bad('its client has no client_id');
      }
      for (const name of ['client_secret', 'issuer', 'token_endpoint_auth_method'] as const) {
        if (client[name] !== undefined && typeof client[name] !== 'string') throw bad(`its client's ${name}`);
      }
      if (client.issuer !== undefined && !isHttpUrl(client.issuer as string)) throw bad("its client's issuer");
      state.client = client as unknown as OAuthClientInformationMixed;
    }
    const discovery = value.discovery;
    if (discovery !== undefined) {
      if (!isObject(discovery) || !isHttpUrl(discovery.authorizationServerUrl)) {
        throw bad('its discovery has no authorization server URL');
      }
      const metadata = discovery.authorizationServerMetadata;
      if (metadata !== undefined) {
        if (!isObject(metadata)) throw bad('its authorization server metadata');
        for (const name of ['issuer', 'token_endpoint', 'authorization_endpoint', 'registration_endpoint'] as const) {
          if (metadata[name] !== undefined && !isHttpUrl(metadata[name])) throw bad(`its ${name}`);
        }
      }
      state.discovery = discovery as unknown as OAuthDiscoveryState;
    }
    if (value.verifier !== undefined) {
      if (typeof value.verifier !== 'string') throw bad('its PKCE verifier');
      state.verifier = value.verifier;
    }
    return state;
  }
}

function encode(state: McpState): StoreRecord {
  const out: StoreRecord = { v: VERSION, serverUrl: state.serverUrl, updatedAt: state.updatedAt };
  // Through JSON: the SDK's objects may hold `undefined` members, which records cannot.
  if (state.discovery !== undefined) out.discovery = JSON.parse(JSON.stringify(state.discovery));
  if (state.client !== undefined) out.client = JSON.parse(JSON.stringify(state.client));
  if (state.verifier !== undefined) out.verifier = state.verifier;
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
