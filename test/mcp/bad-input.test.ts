// Bad input to tokenkeeper/mcp: each a typed error, with nothing stored half-way.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mcpAuthProvider } from '../../src/exports/mcp.js';
import { memoryStore, SessionManager, type Store, type StoreRecord } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import { clientMetadata } from './client-metadata.js';
import { approve, type McpTestServer, startAuthServer, startMcpServer } from './servers.js';

let as: Awaited<ReturnType<typeof startAuthServer>>;
let mcp: McpTestServer;
let bare: McpTestServer;

beforeAll(async () => {
  as = await startAuthServer();
  mcp = await startMcpServer(as);
  bare = await startMcpServer(as, { prm: false });
});

afterAll(async () => {
  await bare?.close();
  await mcp?.close();
  await as?.close();
});

async function keys(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const key of store.keys('')) out.push(key);
  return out;
}

const connect = (url: string, authProvider: ReturnType<typeof mcpAuthProvider>) =>
  new Client({ name: 'test', version: '1' }).connect(new StreamableHTTPClientTransport(new URL(url), { authProvider }));

describe('tokenkeeper/mcp: bad input', () => {
  it('an MCP server without RFC 9728 metadata whose origin names another origin as its server: TOKENKEEPER_DISCOVERY_FAILED, nothing stored', async () => {
    const store = memoryStore();
    const manager = new SessionManager({ store });
    const registrations = as.counts.registrations;
    const provider = mcpAuthProvider(manager, { serverUrl: bare.url, clientMetadata });
    const viaLogin = await rejection(provider.login({ open: (url) => approve(url) }));
    expect(viaLogin.code).toBe('TOKENKEEPER_DISCOVERY_FAILED');
    expect(viaLogin.message).toContain('no protected resource metadata (RFC 9728)');
    expect(viaLogin.message).toContain(new URL(as.issuer).origin);
    // The SDK's own discovery, after the server's 401, meets the same refusal.
    const viaSdk = await rejection(
      connect(bare.url, mcpAuthProvider(manager, { serverUrl: bare.url, clientMetadata })),
    );
    expect(viaSdk.code).toBe('TOKENKEEPER_DISCOVERY_FAILED');
    expect(await keys(store)).toEqual([]);
    expect(as.counts.registrations).toBe(registrations);
  });

  it('a registration the server refuses: TOKENKEEPER_INVALID_CLIENT with its error, no client and no session stored', async () => {
    const store = memoryStore();
    const manager = new SessionManager({ store });
    const provider = mcpAuthProvider(manager, {
      serverUrl: mcp.url,
      // A native client may not redirect to another host over http: oidc-provider refuses it.
      clientMetadata: { ...clientMetadata, redirect_uris: ['http://app.example.com/callback'] },
    });
    const error = await rejection(provider.login({ open: (url) => approve(url) }));
    expect(error.code).toBe('TOKENKEEPER_INVALID_CLIENT');
    expect(error.message).toMatch(/refused to register this client \(invalid_redirect_uri/);
    expect(error.message).toContain('Nothing was stored');
    expect(await provider.clientInformation().catch(() => 'threw')).toBe('threw'); // registering again is refused again
    const stored = await keys(store);
    expect(stored.filter((k) => k.includes(':s:'))).toEqual([]);
    const record = (await manager._forServer({}, `mcp ${mcp.url}`).store.get(stored[0] as string))?.value;
    expect(record?.client).toBeUndefined(); // only the discovery results, which are complete, are kept
  });

  it('a tampered client record: TOKENKEEPER_CORRUPT_RECORD naming the key, the record and the session left as they are', async () => {
    const store = memoryStore();
    const manager = new SessionManager({ store });
    await mcpAuthProvider(manager, { serverUrl: mcp.url, clientMetadata }).login({ open: (url) => approve(url) });
    const key = (await keys(store)).find((k) => k.includes(':mcp:')) as string;
    const entry = await store.get(key);
    const tampered = { ...entry?.value, client: { ...(entry?.value.client as object), client_id: 42 } };
    await store.set(key, tampered);
    const before = await keys(store);

    const provider = mcpAuthProvider(manager, { serverUrl: mcp.url, clientMetadata });
    const error = await rejection(connect(mcp.url, provider));
    expect(error.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(error.key).toBe(key);
    expect(error.message).toContain('is not one tokenkeeper wrote');
    expect((await store.get(key))?.value).toEqual(tampered);
    expect(await keys(store)).toEqual(before);
  });

  it('an encrypted client record is unreadable at rest and, copied under another session id, does not decrypt', async () => {
    const store = memoryStore();
    const encryption = { keys: { k1: new Uint8Array(32).fill(7) }, current: 'k1' };
    const manager = new SessionManager({ store, encryption });
    await mcpAuthProvider(manager, { serverUrl: mcp.url, clientMetadata }).login({ open: (url) => approve(url) });
    const key = (await keys(store)).find((k) => k.includes(':mcp:')) as string;
    const raw = (await store.get(key))?.value as StoreRecord;
    expect(JSON.stringify(raw)).not.toContain('client_id'); // encrypted at rest
    // Copied under another session id: bound to its key (and MCP server), it does not decrypt there.
    const other = new SessionManager({ store, encryption });
    const provider = mcpAuthProvider(other, { serverUrl: mcp.url, clientMetadata, sessionId: 'elsewhere' });
    await store.set(`${other.namespace}:mcp:elsewhere`, raw);
    const error = await rejection(provider.tokens());
    expect(['TOKENKEEPER_DECRYPT_FAILED', 'TOKENKEEPER_CORRUPT_RECORD']).toContain(error.code);
  });

  it('a manager without issuer and client hosts sessions but cannot log in by itself', async () => {
    const manager = new SessionManager({ store: memoryStore() });
    const error = await rejection(manager.login({ grant: 'client_credentials' }));
    expect(error.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(error.message).toContain('created without an issuer and a client');
  });

  it('options: serverUrl, clientMetadata and the client_credentials grant are checked', () => {
    const manager = new SessionManager({ store: memoryStore() });
    expect(() => mcpAuthProvider(manager, { serverUrl: 'not a url', clientMetadata })).toThrow(
      /serverUrl must be an absolute URL/,
    );
    expect(() => mcpAuthProvider(manager, { serverUrl: 'https://u:p@mcp.example.com/', clientMetadata })).toThrow(
      /must not carry credentials/,
    );
    expect(() => mcpAuthProvider(manager, { serverUrl: mcp.url } as never)).toThrow(/clientMetadata is required/);
    expect(() => mcpAuthProvider(manager, { serverUrl: mcp.url, clientMetadata, grant: 'client_credentials' })).toThrow(
      /needs clientInformation/,
    );
  });
});
