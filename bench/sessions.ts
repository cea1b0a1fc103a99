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
