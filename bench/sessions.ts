import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRealAuthServer } from '../examples/auth-server.js';
import { fileStore } from '../src/exports/file.js';
import { SessionManager, type StoreRecord } from '../src/index.js';
import { startChild, waitForOutput } from '../test/helpers/child.js';
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
