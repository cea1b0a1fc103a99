// `npm run bench stall`: what a busy fleet meets. Storm hand-off cost per store and fleet size,
// recovery after a holder is killed mid-refresh, caller latency across renewals, and memory
// after touching many sessions. Every figure comes with its baseline from the same run.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisStore } from '../src/exports/redis.js';
import { memoryStore, SessionManager } from '../src/index.js';
import { startChild, waitForOutput } from '../test/helpers/child.js';
import { startFakeAuthServer } from '../test/helpers/fake-as.js';
import { REDIS_URL, runId } from '../test/helpers/services.js';
import { openStore, sharedStores } from '../test/helpers/store-config.js';
import { fmt } from './harness.js';

const SERVER_MS = 150;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

export async function benchStall(): Promise<void> {
  const as = await startFakeAuthServer();
  const client = { clientId: as.clientId, clientSecret: as.clientSecret };
  const { stores, cleanup } = sharedStores();
  try {
    // 1. Storms: N processes x 50 callers on one expired session, a 150 ms server. The baseline,
    // measured first at each size, is the same fleet asking for a token that is still valid:
    // what waking N processes on two cores costs, with no renewal to hand over.
    // Flags (after `npm run bench -- stall`): --sizes 2,16 (default 1,2,4,8,16,32), --runs R
    // (default 1; each cell is then the median of R storms, its min beside it).
    const SIZES = flag('sizes', '1,2,4,8,16,32').split(',').map(Number);
    const RUNS = Number(flag('runs', '1'));
    const at = (n: number) => SIZES.indexOf(n);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const storm = async (
      configFor: (dir: string) => import('../test/helpers/store-config.js').StoreConfig,
      processes: number,
      expired: boolean,
    ): Promise<{ wall: number; refreshes: number; failed?: string }> => {
      try {
        return await stormOnce(configFor, processes, expired);
      } catch (error) {
        // A busy machine can fail a storm (a worker too slow to start): say so, and go on.
        return {
          wall: Number.NaN,
          refreshes: as.counts.refresh,
          failed: String((error as Error).message).slice(0, 120),
        };
      }
    };
    const stormOnce = async (
      configFor: (dir: string) => import('../test/helpers/store-config.js').StoreConfig,
      processes: number,
      expired: boolean,
    ) => {
      const dir = join(mkdtempSync(join(tmpdir(), 'tk-bench-stall-')), 'store');
      const storeConfig = configFor(dir);
      const store = openStore(storeConfig);
      const manager = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client });
      await manager.adopt('storm', as.issue({ expiresIn: expired ? 0 : 3600 }));
      as.resetCounts();
      as.latencyMs = SERVER_MS;
      const config = JSON.stringify({ dir, store: storeConfig, tokenEndpoint: as.tokenEndpoint, client });
      const children = Array.from({ length: processes }, () =>
        startChild('session-worker.ts', ['storm', config, 'storm', '50']),
      );
      try {
        await Promise.all(children.map((c) => waitForOutput(c.child, 'ready', 120_000)));
      } catch (error) {
        for (const c of children) c.child.kill('SIGKILL');
        await store.close();
        throw error;
      }
      const started = performance.now();
      writeFileSync(`${dir}.go`, '');
      const results = await Promise.all(children.map((c) => c.done));
      const wall = performance.now() - started;
      await store.close();
      const failed = results.find((r) => r.code !== 0);
      if (failed) throw new Error(`a storm worker failed: ${failed.stderr.trim().split('\n').pop()}`);
      return { wall, refreshes: as.counts.refresh };
    };
    /** The median (and min) over RUNS storms of one cell; failed storms are counted, not timed. */
    const cell = async (configFor: Parameters<typeof storm>[0], processes: number, expired: boolean) => {
      const walls: number[] = [];
      let refreshes = 0;
      let failures = 0;
      for (let r = 0; r < RUNS; r++) {
        const run = await storm(configFor, processes, expired);
        refreshes = Math.max(refreshes, run.refreshes);
        if (run.failed) {
          failures++;
          console.error(`(a storm of ${processes} failed: ${run.failed})`);
        } else walls.push(run.wall);
      }
      return {
        wall: walls.length ? median(walls) : Number.NaN,
        min: walls.length ? Math.min(...walls) : Number.NaN,
        refreshes,
        failures,
      };
    };
    const baseline: number[] = [];
    for (const processes of SIZES)
      baseline.push((await cell((dir) => ({ kind: 'file', path: dir }), processes, false)).wall);
    console.log(
      `\n## Refresh storm per store: N processes x 50 getAccessToken() on one expired session, ${SERVER_MS} ms server\n`,
    );
    console.log(
      "Hand-off cost: wall time minus the server's 150 ms minus the baseline (the same fleet, token still valid: " +
        `${baseline.map(fmt).join(', ')} ms at ${SIZES.join(', ')} processes on this machine's 2 cores).\n`,
    );
    console.log(
      `Each cell: median of ${RUNS} storm(s) (min in brackets). Load average: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(', ')} (a shared 2-core machine).\n`,
    );
    console.log(`| store | ${SIZES.join(' | ')} | 16 vs 2 | refreshes | failed storms |`);
    console.log(`| --- | ${SIZES.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`);
    for (const [label, configFor] of stores) {
      const cells: number[] = [];
      const shown: string[] = [];
      let refreshes = 0;
      let failures = 0;
      for (const [i, processes] of SIZES.entries()) {
        const run = await cell(configFor, processes, true);
        const cost = (w: number) => Math.max(0, w - SERVER_MS - (baseline[i] as number));
        cells.push(cost(run.wall));
        shown.push(RUNS > 1 ? `${fmt(cost(run.wall))} (${fmt(cost(run.min))})` : fmt(cost(run.wall)));
        refreshes = Math.max(refreshes, run.refreshes);
        failures += run.failures;
      }
      const two = cells[at(2)];
      const sixteen = cells[at(16)];
      const ratio =
        two === undefined || sixteen === undefined || !Number.isFinite(two + sixteen)
          ? 'n/a'
          : `${(sixteen / Math.max(1, two)).toFixed(2)}x`;
      console.log(`| ${label} | ${shown.join(' | ')} | ${ratio} | ${refreshes} | ${failures} |`);
    }
    if (flag('only', '') === 'storms') {
      await as.close(); // the storms alone (`--only storms`): cleanup() runs below
      return;
    }

    // 2. Recovery: the holder is killed while its refresh is at the server (the answer is lost).
    console.log('\n## Recovery after a holder is killed mid-refresh (server with a 30 s reuse grace window)\n');
    console.log('| store | next process has a valid token after (ms) | 0.1 (45 s lease) |');
    console.log('| --- | ---: | ---: |');
    for (const [label, configFor] of stores) {
      const dir = join(mkdtempSync(join(tmpdir(), 'tk-bench-recover-')), 'store');
      const storeConfig = configFor(dir);
      const store = openStore(storeConfig);
      const manager = new SessionManager({
        store,
        tokenEndpoint: as.tokenEndpoint,
        client,
        rotationGraceMs: 30_000, // undecidedWaitMs stays at its default (3 s)
      });
      await manager.adopt('killed', as.issue({ expiresIn: 0 }));
      as.resetCounts();
      as.refreshGraceMs = 30_000;
      as.latencyMs = 1_000;
      const config = JSON.stringify({ dir, store: storeConfig, tokenEndpoint: as.tokenEndpoint, client });
      const holder = startChild('session-worker.ts', ['token', config, 'killed']);
      while (as.counts.received === 0) await new Promise((r) => setTimeout(r, 5));
      holder.child.kill('SIGKILL');
      await holder.done;
      as.latencyMs = 0;
      await new Promise((r) => setTimeout(r, 1_100));
      const started = performance.now();
      await (await manager.get('killed'))?.getAccessToken();
      console.log(`| ${label} | ${fmt(performance.now() - started)} | about 45,000 |`);
      as.refreshGraceMs = 0;
      await store.close();
    }
  } finally {
    await cleanup();
  }

  // 3. Latency across renewals: 3 s tokens, 1.5 s margin, a 300 ms server, a call every 5 ms.
  {
    as.resetCounts();
    as.latencyMs = 300;
    as.accessTokenTtl = 3;
    const manager = new SessionManager({
      store: memoryStore(),
      tokenEndpoint: as.tokenEndpoint,
      client,
      refreshSkewMs: 1_500,
    });
    const session = await manager.adopt('hot', as.issue({ expiresIn: 3 }));
    const latencies: number[] = [];
    const until = Date.now() + 8_000;
    const pending: Promise<void>[] = [];
    while (Date.now() < until) {
      const started = performance.now();
      pending.push(session.getAccessToken().then(() => void latencies.push(performance.now() - started)));
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(pending);
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number;
    console.log(
      '\n## Caller latency across renewals: 3 s tokens, 1.5 s margin, 300 ms server, a call every 5 ms for 8 s\n',
    );
    console.log('| calls | renewals | p50 (ms) | p99 (ms) | max (ms) | calls over 50 ms | 0.1: p99, over 50 ms |');
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    console.log(
      `| ${latencies.length} | ${as.counts.refresh} | ${at(0.5).toFixed(2)} | ${at(0.99).toFixed(2)} | ${fmt(
        latencies[latencies.length - 1] as number,
      )} | ${latencies.filter((l) => l > 50).length} | 293 ms, 247 of 1,526 |`,
    );
    as.accessTokenTtl = 3600;
    as.latencyMs = 0;
  }

  // 4. Memory: one process touches N sessions whose records are in Redis.
  {
    const gc = (globalThis as { gc?: () => void }).gc;
    // A full GC, then a pause for finalizers (the session cache forgets collected sessions in
    // them), then another GC.
    const settle = async () => {
      gc?.();
      await new Promise((r) => setTimeout(r, 200));
      gc?.();
    };
    console.log('\n## Retained heap after touching N sessions (records in Redis), after a full GC\n');
    console.log('| sessions | heap growth (MB) | per session (B) | 0.1 |');
    console.log('| ---: | ---: | ---: | --- |');
    for (const n of [10_000, 100_000]) {
      const ns = runId();
      const store = redisStore({ url: REDIS_URL, namespace: ns });
      const writer = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client });
      const record = as.issue({ expiresIn: 3600 });
      for (let i = 0; i < n; i += 256) {
        await Promise.all(
          Array.from({ length: Math.min(256, n - i) }, (_, j) => writer.adopt(`u${i + j}`, { ...record })),
        );
      }
      const reader = new SessionManager({ store, tokenEndpoint: as.tokenEndpoint, client });
      await settle();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < n; i += 256) {
        await Promise.all(
          Array.from({ length: Math.min(256, n - i) }, async (_, j) => {
            const s = await reader.get(`u${i + j}`);
            await s?.getAccessToken();
          }),
        );
      }
      await settle();
      const grown = process.memoryUsage().heapUsed - before;
      console.log(
        `| ${n.toLocaleString('en-US')} | ${(grown / 1e6).toFixed(1)} | ${Math.round(grown / n)} | 26 MB for 50,000, growing forever |`,
      );
      for await (const key of store.keys()) await store.delete(key);
      await store.close();
    }
  }
  await as.close();
}
