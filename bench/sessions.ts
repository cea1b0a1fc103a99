import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRealAuthServer } from '../examples/auth-server.js';
import { fileStore } from '../src/exports/file.js';
import { SessionManager, type StoreRecord } from '../src/index.js';
import { startChild, waitForOutput } from '../test/helpers/child.js';
import { startFakeAuthServer } from '../test/helpers/fake-as.js';
import { comparePairs, fmt } from './harness.js';

export async function benchSessions(): Promise<void> {
  const server = await startRealAuthServer();
  const client = { clientId: server.clientId, clientSecret: server.clientSecret };

  // The hot path: a fresh token from memory.
  const manager = new SessionManager({ issuer: server.issuer, client });
  const session = await manager.login(
    { grant: 'refresh_token', refreshToken: await server.mintRefreshToken() },
    { sessionId: 'u' },
  );
  const map = new Map([['u', await session.getAccessToken()]]);
  await comparePairs('getAccessToken() on a fresh session vs a bare Map.get of a string', [
    {
      name: 'session.getAccessToken()',
      baselineName: 'Map.get',
      ours: () => session.getAccessToken(),
      baseline: async () => map.get('u'),
    },
  ]);
  await hotPathByHand(session, map);

  // DPoP: a proof for every request. Its cost over the signature itself (ES256, Web Crypto).
  const fake = await startFakeAuthServer();
  const dpopManager = new SessionManager({
    tokenEndpoint: fake.tokenEndpoint,
    client: { clientId: fake.clientId, clientSecret: fake.clientSecret },
    encryption: { keys: { k1: new Uint8Array(32).fill(5) }, current: 'k1' },
    dpop: { allowBearer: true }, // the fake server issues bearer tokens; the session still has its key
  });
  const dpopSession = await dpopManager.login({ grant: 'client_credentials' }, { sessionId: 'd' });
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const payload = new TextEncoder().encode('x'.repeat(380)); // about the size of a proof's signing input
  await comparePairs('DPoP proof for a request vs a bare ECDSA P-256 signature of the same size', [
    {
      name: "session.dpopProof('GET', url)",
      baselineName: 'crypto.subtle.sign(ES256)',
      ours: () => dpopSession.dpopProof('GET', 'https://api.example.com/things?page=2'),
      baseline: () => crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, payload),
    },
  ]);
  await fake.close();

  // The storm: N processes x 200 callers on one expired session in one file store.
  console.log(
    '\n## Refresh storm: N processes x 200 getAccessToken() on one expired session (file store, oidc-provider)\n',
  );
  console.log('| processes | callers | refresh requests | errors | distinct tokens | wall time (ms) |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const processes of [1, 2, 4, 8]) {
    const dir = join(mkdtempSync(join(tmpdir(), 'tk-bench-storm-')), 'store');
    const m = new SessionManager({ store: fileStore({ path: dir }), issuer: server.issuer, client });
    await m.login({ grant: 'refresh_token', refreshToken: await server.mintRefreshToken() }, { sessionId: 'storm' });
    const store = fileStore({ path: dir });
    const entry = await store.get('tokenkeeper:s:storm');
    const value = structuredClone(entry?.value) as StoreRecord & { tokens: { expiresAt: number } };
    value.tokens.expiresAt = Date.now() - 1000;
    await store.set('tokenkeeper:s:storm', value);
    const config = JSON.stringify({ dir, issuer: server.issuer, client });
    const children = Array.from({ length: processes }, () =>
      startChild('session-worker.ts', ['storm', config, 'storm', '200']),
    );
    await Promise.all(children.map((c) => waitForOutput(c.child, 'ready')));
    const before = { ...server.counts };
    const started = performance.now();
    writeFileSync(`${dir}.go`, '');
    const results = await Promise.all(children.map((c) => c.done));
    const wall = performance.now() - started;
    const tokens = new Set(results.flatMap((r) => JSON.parse(r.stdout.trim().split('\n').pop() as string).tokens));
    console.log(
      `| ${processes} | ${processes * 200} | ${server.counts.refresh_token - before.refresh_token} | ${
        server.counts.errors - before.errors
      } | ${tokens.size} | ${fmt(wall)} |`,
    );
  }
  await server.close();
}

/** `npm run bench hot`: the hot path by hand only (a session from the fake server, no storms). */
export async function benchHotPath(): Promise<void> {
  const fake = await startFakeAuthServer();
  const manager = new SessionManager({
    tokenEndpoint: fake.tokenEndpoint,
    client: { clientId: fake.clientId, clientSecret: fake.clientSecret },
  });
  const session = await manager.adopt('u', fake.issue({ expiresIn: 3600 }));
  await hotPathByHand(session, new Map([['u', await session.getAccessToken()]]));
  await fake.close();
}

/**
 * The hot path measured with a hand loop: tinybench adds about 100 ns of its own to every call
 * on both sides, which flatters a ratio of two calls costing a few dozen ns. Each round times
 * 200,000 awaited calls of each side, alternating; the median of 9 rounds is printed. With
 * `TK_BENCH_GOOGLE=<folder holding node_modules/google-auth-library>`, google-auth-library's
 * `OAuth2Client.getAccessToken()` with a valid token in memory is measured in the same rounds.
 */
async function hotPathByHand(session: { getAccessToken(): Promise<string> }, map: Map<string, string>): Promise<void> {
  const N = 200_000;
  const loop = async (call: () => Promise<unknown>) => {
    const started = performance.now();
    for (let i = 0; i < N; i++) await call();
    return ((performance.now() - started) * 1e6) / N; // ns per call
  };
  const sides: [string, () => Promise<unknown>][] = [
    ['await map.get(id)', async () => map.get('u')],
    ['await session.getAccessToken()', () => session.getAccessToken()],
  ];
  const google = process.env.TK_BENCH_GOOGLE;
  if (google) {
    const { createRequire } = await import('node:module');
    const { OAuth2Client } = createRequire(join(google, 'package.json'))('google-auth-library') as {
      OAuth2Client: new () => { setCredentials(c: object): void; getAccessToken(): Promise<unknown> };
    };
    const g = new OAuth2Client();
    g.setCredentials({ access_token: 'x'.repeat(40), expiry_date: Date.now() + 3_600_000 });
    sides.push(['google-auth-library OAuth2Client.getAccessToken()', () => g.getAccessToken()]);
  }
  const rounds: number[][] = sides.map(() => []);
  for (const [, call] of sides) await loop(call); // warm up
  for (let r = 0; r < 9; r++) for (const [i, [, call]] of sides.entries()) rounds[i]?.push(await loop(call));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const base = median(rounds[0] as number[]);
  console.log('\n## The hot path by hand: 200,000 awaited calls per round, median of 9 rounds\n');
  console.log('| call | ns per call | vs await map.get |');
  console.log('| --- | ---: | ---: |');
  for (const [i, [name]] of sides.entries()) {
    const ns = median(rounds[i] as number[]);
    console.log(`| ${name} | ${ns.toFixed(1)} | ${(ns / base).toFixed(2)}x |`);
  }
  if (!google)
    console.log('\n(google-auth-library not measured: set TK_BENCH_GOOGLE to a folder where it is installed.)');
}
