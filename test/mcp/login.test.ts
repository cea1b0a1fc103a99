import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../../src/exports/file.js';
import { mcpAuthProvider } from '../../src/exports/mcp.js';
import { memoryStore, SessionManager } from '../../src/index.js';

const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

import { clientMetadata } from './client-metadata.js';
import { approve, type McpTestServer, startAuthServer, startMcpServer } from './servers.js';

let as: Awaited<ReturnType<typeof startAuthServer>>;
let mcp: McpTestServer;
let dir: string;

const SERVICE = { client_id: 'mcp-service', client_secret: 'a-secret-that-is-long-enough-0123456789' };

beforeAll(async () => {
  as = await startAuthServer({
    clients: [
      { ...SERVICE, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'mcp:tools' },
    ],
  });
  mcp = await startMcpServer(as);
  dir = mkdtempSync(join(tmpdir(), 'tk-mcp-'));
});

afterAll(async () => {
  await mcp?.close();
  await as?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function connect(manager: SessionManager) {
  const authProvider = mcpAuthProvider(manager, { serverUrl: mcp.url, clientMetadata });
  const client = new Client({ name: 'test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider }));
  return { client, authProvider };
}

describe('mcpAuthProvider: log in once', () => {
  it('registers, logs in through the loopback, calls a tool, and a restart needs neither', async () => {
    const manager = new SessionManager({ store: fileStore({ path: dir }) });
    const provider = mcpAuthProvider(manager, { serverUrl: mcp.url, clientMetadata });
    await provider.login({ open: (url) => approve(url) });
    expect(as.counts.registrations).toBe(1);
    expect(as.counts.authorization_code).toBe(1);
    const { client } = await connect(manager);
    const result = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
    expect(result.content).toEqual([{ type: 'text', text: 'hi' }]);
    await client.close();
    await manager.close();

    const before = { ...as.counts };
    const again = new SessionManager({ store: fileStore({ path: dir }) });
    const second = await connect(again);
    await second.client.callTool({ name: 'echo', arguments: { text: 'again' } });
    expect(as.counts.registrations).toBe(before.registrations);
    expect(as.counts.refresh_token + as.counts.authorization_code).toBe(
      before.refresh_token + before.authorization_code,
    );
    const ids: string[] = [];
    for await (const id of again.sessionIds()) ids.push(id);
    expect(ids).toEqual([`mcp:${mcp.url}`]);
    await second.client.close();
    await again.close();
  });
});

describe('mcpAuthProvider: other logins', () => {
  it("the SDK's own login (onRedirect, then transport.finishAuth): the code it redeems is stored as the session", async () => {
    let code: string | undefined;
    const listener = createServer((req, res) => {
      code = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('code') ?? undefined;
      res.end('ok');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const redirectUrl = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/callback`;
    try {
      const store = memoryStore();
      const manager = new SessionManager({ store });
      const refreshes: unknown[] = [];
      manager.on('refresh', (event) => refreshes.push(event));
      const provider = mcpAuthProvider(manager, {
        serverUrl: mcp.url,
        clientMetadata,
        redirectUrl,
        onRedirect: (url) => approve(url.href),
      });
      const transport = new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider });
      await expect(new Client({ name: 'sdk-login', version: '1' }).connect(transport)).rejects.toThrow(/Unauthorized/);
      await transport.finishAuth(code as string);
      const client = new Client({ name: 'sdk-login', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider }));
      expect((await client.callTool({ name: 'echo', arguments: { text: 'sdk' } })).content).toEqual([
        { type: 'text', text: 'sdk' },
      ]);
      // The server ends the access token: the SDK's refresh after the 401 is answered from the
      // store, through the manager's engine (its refresh event fires on the manager given).
      const refreshed = as.counts.refresh_token;
      await as.revokeAccessToken(mcp.seen.at(-1) as string);
      expect((await client.callTool({ name: 'echo', arguments: { text: 'again' } })).content).toEqual([
        { type: 'text', text: 'again' },
      ]);
      expect(as.counts.refresh_token - refreshed).toBe(1);
      expect(refreshes).toHaveLength(1);
      expect(JSON.stringify(refreshes)).not.toContain(mcp.seen.at(-1) as string);
      await client.close();
      // Stored as a session like any other: another manager on the store uses it.
      const other = mcpAuthProvider(new SessionManager({ store }), { serverUrl: mcp.url, clientMetadata });
      expect((await other.tokens())?.access_token).toBe(mcp.seen.at(-1));
    } finally {
      listener.close();
    }
  });

  it('the device flow (RFC 8628) for headless machines, then tool calls', async () => {
    const manager = new SessionManager({ store: memoryStore() });
    const provider = mcpAuthProvider(manager, {
      serverUrl: mcp.url,
      clientMetadata: { ...clientMetadata, grant_types: [...clientMetadata.grant_types, DEVICE_CODE] },
    });
    let shown: string | undefined;
    const before = as.counts.device_code;
    await provider.login({
      device: {
        onPrompt: (prompt) => {
          shown = prompt.userCode;
          // The user confirms the code on another device; here, over plain HTTP.
          void approve(prompt.verificationUriComplete as string).catch(() => {});
        },
      },
    });
    expect(shown).toMatch(/\w/);
    expect(as.counts.device_code - before).toBe(1);
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: provider }));
    expect((await client.callTool({ name: 'echo', arguments: { text: 'device' } })).content).toEqual([
      { type: 'text', text: 'device' },
    ]);
    await client.close();
  }, 60_000);

  it('client_credentials: a client acting as itself gets its token once, and a restart reuses it', async () => {
    const store = memoryStore();
    const options = {
      serverUrl: mcp.url,
      grant: 'client_credentials' as const,
      clientInformation: SERVICE,
      clientMetadata: { client_name: 'service', redirect_uris: [], scope: 'mcp:tools' },
    };
    const before = as.counts.client_credentials;
    const registrations = as.counts.registrations;
    for (const text of ['first', 'second']) {
      const manager = new SessionManager({ store });
      const client = new Client({ name: 'svc', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: mcpAuthProvider(manager, options) }),
      );
      expect((await client.callTool({ name: 'echo', arguments: { text } })).content).toEqual([{ type: 'text', text }]);
      await client.close();
    }
    expect(as.counts.client_credentials - before).toBe(1);
    expect(as.counts.registrations).toBe(registrations); // a client registered by hand registers nothing
  });
});
