// Many MCP client processes share one login: the real SDK Client and transport in 8 processes,
// against the SDK's McpServer behind its bearer-auth middleware, with oidc-provider rotating
// refresh tokens and revoking the family on reuse.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../../src/exports/file.js';
import { mcpAuthProvider } from '../../src/exports/mcp.js';
import { SessionManager } from '../../src/index.js';
import { NaiveFileProvider } from '../fixtures/mcp-naive.js';
import { startChild } from '../helpers/child.js';
import { clientMetadata } from './client-metadata.js';
import { approve, type McpTestServer, startAuthServer, startMcpServer } from './servers.js';

const PROCESSES = 8;
const CALLS = 20;

type AuthServer = Awaited<ReturnType<typeof startAuthServer>>;

interface Outcome {
  ok: number;
  errors: string[];
}

async function setup(accessTokenTtlS: number) {
  const as = await startAuthServer({ accessTokenTtlS });
  const mcp = await startMcpServer(as);
  const dir = mkdtempSync(join(tmpdir(), 'tk-mcp-storm-'));
  return { as, mcp, dir };
}

async function loginOnce(dir: string, mcp: McpTestServer): Promise<void> {
  const manager = new SessionManager({ store: fileStore({ path: dir }) });
  await mcpAuthProvider(manager, { serverUrl: mcp.url, clientMetadata }).login({ open: (url) => approve(url) });
  await manager.close();
}

function run(
  dir: string,
  mcp: McpTestServer,
  n: number,
  options: { calls?: number; intervalMs?: number; refreshSkewMs?: number; provider?: 'naive'; barrier?: boolean } = {},
) {
  return Array.from({ length: n }, (_, id) => {
    const config = {
      dir,
      serverUrl: mcp.url,
      calls: options.calls ?? CALLS,
      intervalMs: options.intervalMs ?? 200,
      id,
      ...options,
    };
    const child = startChild('mcp-worker.ts', [JSON.stringify(config)]);
    return child.done.then((r) => {
      if (r.code !== 0) throw new Error(`worker ${id} exited ${r.code}: ${r.stderr}`);
      const outcome = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Outcome;
      if (outcome.errors.length > 0 && r.stderr) outcome.errors.push(`stderr: ${r.stderr.slice(0, 2000)}`);
      return outcome;
    });
  });
}

/** Waits until every worker is past its first call, then revokes the token they hold and lets them all call at once. */
async function revokeWhenReady(dir: string, as: AuthServer, mcp: McpTestServer): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (Array.from({ length: PROCESSES }, (_, id) => existsSync(join(dir, `ready-${id}`))).every(Boolean)) break;
    await sleep(50);
  }
  await as.revokeAccessToken(mcp.seen.at(-1) as string);
  writeFileSync(join(dir, 'go'), '');
}

const tokenRequests = (as: AuthServer) =>
  as.counts.refresh_token + as.counts.authorization_code + as.counts.client_credentials + as.counts.device_code;

describe('tokenkeeper/mcp: 8 processes, one login', () => {
  let expiring: Awaited<ReturnType<typeof setup>>;
  let lasting: Awaited<ReturnType<typeof setup>>;

  beforeAll(async () => {
    [expiring, lasting] = await Promise.all([setup(4), setup(3600)]);
    await loginOnce(expiring.dir, expiring.mcp);
    await loginOnce(lasting.dir, lasting.mcp);
  });

  afterAll(async () => {
    for (const s of [expiring, lasting]) {
      if (s === undefined) continue;
      await s.mcp.close();
      await s.as.close();
      rmSync(s.dir, { recursive: true, force: true });
    }
  });

  it('8 x 20 tool calls across 3 access-token expiries: one refresh per expiry, no invalid_grant', async () => {
    const { as, mcp, dir } = expiring;
    // 4 s tokens renewed 1 s ahead; 20 calls 700 ms apart span 3 expiries or more.
    const outcomes = await Promise.all(run(dir, mcp, PROCESSES, { intervalMs: 700, refreshSkewMs: 1_000 }));
    expect(outcomes.flatMap((o) => o.errors)).toEqual([]);
    expect(outcomes.reduce((n, o) => n + o.ok, 0)).toBe(PROCESSES * CALLS);
    expect(as.counts.invalidGrants).toBe(0);
    expect(as.counts.errors).toBe(0);
    expect(as.counts.authorization_code).toBe(1); // the one login
    expect(as.counts.registrations).toBe(1);
    const times = as.counts.refreshedAt;
    expect(times.length).toBeGreaterThanOrEqual(3);
    // One refresh per token lifetime: two refreshes never fall within one (4 s, renewed 1 s early).
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(2_000);
  }, 120_000);

  it('an access token revoked mid-run (a 401 the SDK handles): one renewal, every process recovers', async () => {
    const { as, mcp, dir } = lasting;
    const before = { refresh: as.counts.refresh_token, code: as.counts.authorization_code };
    const outcomes = run(dir, mcp, PROCESSES, { calls: 6, intervalMs: 100, barrier: true });
    await revokeWhenReady(dir, as, mcp);
    const done = await Promise.all(outcomes);
    expect(done.flatMap((o) => o.errors)).toEqual([]);
    expect(done.reduce((n, o) => n + o.ok, 0)).toBe(PROCESSES * 6);
    expect(as.counts.refresh_token - before.refresh).toBe(1);
    expect(as.counts.authorization_code).toBe(before.code);
    expect(as.counts.invalidGrants).toBe(0);
    expect(as.counts.errors).toBe(0);
  }, 120_000);

  it('a new process after they all exit: 0 token requests, 0 registrations, first call answered', async () => {
    const { as, mcp, dir } = lasting;
    const requests = tokenRequests(as);
    const registrations = as.counts.registrations;
    const [outcome] = await Promise.all(run(dir, mcp, 1, { calls: 1 }));
    expect(outcome).toEqual({ ok: 1, errors: [] });
    expect(tokenRequests(as)).toBe(requests);
    expect(as.counts.registrations).toBe(registrations);
  }, 60_000);
});

describe('control: a provider that lets the SDK refresh in each process', () => {
  let s: Awaited<ReturnType<typeof setup>>;

  beforeAll(async () => {
    s = await setup(3600);
  });

  afterAll(async () => {
    await s?.mcp.close();
    await s?.as.close();
    if (s) rmSync(s.dir, { recursive: true, force: true });
  });

  it('the same revocation replays the refresh token: invalid_grant, the family revoked, calls fail', async () => {
    const { as, mcp, dir } = s;
    // The SDK's own login with the file provider: the code comes back to a loopback listener.
    let code: string | undefined;
    const listener = createServer((req, res) => {
      code = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('code') ?? undefined;
      res.end('ok');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const redirect = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/callback`;
    const naive = new NaiveFileProvider(join(dir, 'naive.json'), clientMetadata, redirect, (url) => approve(url.href));
    const transport = new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: naive });
    await expect(new Client({ name: 'seed', version: '1' }).connect(transport)).rejects.toThrow(/Unauthorized/);
    await transport.finishAuth(code as string);
    listener.close();

    const outcomes = run(dir, mcp, PROCESSES, { calls: 6, intervalMs: 100, barrier: true, provider: 'naive' });
    await revokeWhenReady(dir, as, mcp);
    const done = await Promise.all(outcomes);
    // Each process posts the same refresh token: the server sees a replay and revokes the family,
    // and every process, the one whose refresh succeeded included, ends up needing a new login.
    expect(as.counts.invalidGrants).toBeGreaterThan(0);
    expect(done.filter((o) => o.errors.length > 0).length).toBeGreaterThan(PROCESSES / 2);
  }, 120_000);
});
