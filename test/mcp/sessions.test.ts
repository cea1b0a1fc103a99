// What tokenkeeper/mcp keeps, and for how long: a session per MCP server in one store, a
// registration that outlives a cleared session, and SDK calls that never delete a login.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../../src/exports/file.js';
import { mcpAuthProvider, REFRESH_HANDLE } from '../../src/exports/mcp.js';
import { memoryStore, SessionManager } from '../../src/index.js';
import { startChild } from '../helpers/child.js';
import { clientMetadata } from './client-metadata.js';
import { approve, type McpTestServer, startAuthServer, startMcpServer } from './servers.js';

let as: Awaited<ReturnType<typeof startAuthServer>>;
let one: McpTestServer;
let two: McpTestServer;

beforeAll(async () => {
  as = await startAuthServer();
  [one, two] = await Promise.all([startMcpServer(as), startMcpServer(as)]);
});

afterAll(async () => {
  await one?.close();
  await two?.close();
  await as?.close();
});

async function ids(manager: SessionManager): Promise<string[]> {
  const out: string[] = [];
  for await (const id of manager.sessionIds()) out.push(id);
  return out.sort();
}

async function call(manager: SessionManager, url: string, text: string): Promise<unknown> {
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      authProvider: mcpAuthProvider(manager, { serverUrl: url, clientMetadata }),
    }),
  );
  try {
    return (await client.callTool({ name: 'echo', arguments: { text } })).content;
  } finally {
    await client.close();
  }
}

describe('tokenkeeper/mcp sessions', () => {
  it('many servers, one store: a session per MCP server, listed and cleared like any other', async () => {
    const manager = new SessionManager({ store: memoryStore() });
    for (const server of [one, two]) {
      await mcpAuthProvider(manager, { serverUrl: server.url, clientMetadata }).login({ open: (url) => approve(url) });
    }
    expect(await ids(manager)).toEqual([`mcp:${one.url}`, `mcp:${two.url}`].sort());
    expect(await call(manager, one.url, 'a')).toEqual([{ type: 'text', text: 'a' }]);
    expect(await call(manager, two.url, 'b')).toEqual([{ type: 'text', text: 'b' }]);

    // Cleared (as `tokenkeeper sessions clear` does): the registration stays, so a new login does not register again.
    const registrations = as.counts.registrations;
    expect(await manager.clear()).toBe(2);
    expect(await ids(manager)).toEqual([]);
    const provider = mcpAuthProvider(manager, { serverUrl: one.url, clientMetadata });
    expect(await provider.tokens()).toBeUndefined();
    await provider.login({ open: (url) => approve(url) });
    expect(as.counts.registrations).toBe(registrations);
    expect(await call(manager, one.url, 'c')).toEqual([{ type: 'text', text: 'c' }]);
  });

  it("invalidateCredentials('tokens') never deletes the session; 'client' keeps a registration made since", async () => {
    const manager = new SessionManager({ store: memoryStore() });
    const provider = mcpAuthProvider(manager, { serverUrl: one.url, clientMetadata });
    await provider.login({ open: (url) => approve(url) });
    const tokens = await provider.tokens();
    await provider.invalidateCredentials('tokens');
    expect(await ids(manager)).toEqual([`mcp:${one.url}`]);
    const again = mcpAuthProvider(manager, { serverUrl: one.url, clientMetadata });
    expect((await again.tokens())?.access_token).toBe(tokens?.access_token);

    // The SDK relays the provider's own answer back: the stand-in refresh token is never stored.
    await again.saveTokens({ access_token: 'relayed', token_type: 'Bearer', refresh_token: REFRESH_HANDLE });
    expect((await mcpAuthProvider(manager, { serverUrl: one.url, clientMetadata }).tokens())?.access_token).toBe(
      tokens?.access_token,
    );

    // Another process registers anew after this one read its client: the SDK's 'client' for the old one keeps it.
    const before = await provider.clientInformation();
    await again.saveClientInformation({ ...(before as object), client_id: 'registered-meanwhile' } as never);
    await provider.invalidateCredentials('client');
    expect(
      (await mcpAuthProvider(manager, { serverUrl: one.url, clientMetadata }).clientInformation())?.client_id,
    ).toBe('registered-meanwhile');
  });

  it('a Client ID Metadata Document URL is the client id where the server supports one: nothing registers', async () => {
    const manager = new SessionManager({ store: memoryStore() });
    const clientMetadataUrl = 'https://app.example.com/oauth/client.json';
    const provider = mcpAuthProvider(manager, { serverUrl: one.url, clientMetadata, clientMetadataUrl });
    expect(provider.clientMetadataUrl).toBe(clientMetadataUrl);
    const metadata = await (await fetch(`${as.issuer}/.well-known/openid-configuration`)).json();
    await provider.saveDiscoveryState({
      authorizationServerUrl: as.issuer,
      authorizationServerMetadata: { ...metadata, client_id_metadata_document_supported: true },
      resourceMetadata: { resource: one.url, authorization_servers: [as.issuer] },
    });
    const registrations = as.counts.registrations;
    expect(await provider.clientInformation()).toEqual({ client_id: clientMetadataUrl, issuer: as.issuer });
    expect(as.counts.registrations).toBe(registrations);
    expect(() =>
      mcpAuthProvider(manager, {
        serverUrl: one.url,
        clientMetadata,
        clientMetadataUrl: 'http://app.example.com/c.json',
      }),
    ).toThrow(/clientMetadataUrl must be an https URL/);
  });

  it('processes starting with nothing stored register once, and each is told to log in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-mcp-reg-'));
    try {
      const registrations = as.counts.registrations;
      const runs = Array.from(
        { length: 4 },
        (_, id) =>
          startChild('mcp-worker.ts', [JSON.stringify({ dir, serverUrl: two.url, calls: 0, intervalMs: 0, id })]).done,
      );
      const outcomes = (await Promise.all(runs)).map((r) => JSON.parse(r.stdout.trim().split('\n').at(-1) as string));
      for (const o of outcomes) expect(o.errors[0]).toMatch(/needs a login: call provider\.login\(\)/);
      expect(as.counts.registrations - registrations).toBe(1);
      // The client they share is the one kept: a login now registers nothing.
      const manager = new SessionManager({ store: fileStore({ path: dir }) });
      await mcpAuthProvider(manager, { serverUrl: two.url, clientMetadata }).login({ open: (url) => approve(url) });
      expect(as.counts.registrations - registrations).toBe(1);
      await manager.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
