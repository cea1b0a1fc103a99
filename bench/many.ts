// `npm run bench many`: a burst of many expired sessions across a fleet, on every shared store.
// N sessions x P processes, every session called at once in every process (users coming back
// after a deploy or an outage), the token endpoint in a process of its own answering in 150 ms.
// Reports refresh requests, refresh tokens presented twice, failed calls and wall time, against
// the same fleet with valid tokens in the same run.
//
// Flags (after `npm run bench -- many`): --sessions N (default 1000), --processes P (default 8),
// --runs R (default 3; min and median are printed), --stores file,sqlite,redis,postgres.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SessionManager } from '../src/index.js';
import { startChild, waitForOutput } from '../test/helpers/child.js';
import { openStore, type StoreConfig, sharedStores } from '../test/helpers/store-config.js';
import { fmt } from './harness.js';

const SERVER_MS = 150;

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

/** The fake authorization server in its own process, driven over its stdin. */
async function authServerProcess() {
  const proc = startChild('as-process.ts', [], { stdin: true });
  const answers = new Map<number, (result: unknown) => void>();
  let first: (info: unknown) => void = () => {};
  const ready = new Promise<unknown>((resolve) => {
    first = resolve;
  });
  createInterface({ input: proc.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const { id, result } = JSON.parse(line) as { id: number; result: unknown };
    if (id === 0) first(result);
    else answers.get(id)?.(result);
  });
  let next = 1;
  const call = <T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> => {
    const id = next++;
    return new Promise<T>((resolve) => {
      answers.set(id, resolve as (r: unknown) => void);
      proc.child.stdin?.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  };
  const info = (await ready) as { tokenEndpoint: string; clientId: string; clientSecret: string };
  return { info, call, done: proc.done };
}

interface Counts {
  refresh: number;
  reuseDetected: number;
  concurrentReuse: number;
  graceReuse: number;
}

interface WorkerOut {
  ms: number;
  ok: number;
  failed: Record<string, number>;
}

export async function benchMany(): Promise<void> {
  const sessions = Number(flag('sessions', '1000'));
  const processes = Number(flag('processes', '8'));
  const runs = Number(flag('runs', '3'));
  const only = flag('stores', 'file,sqlite,redis,postgres').split(',');
  const as = await authServerProcess();
  const client = { clientId: as.info.clientId, clientSecret: as.info.clientSecret };
  const { stores, cleanup } = sharedStores();
  const kinds: Record<string, string> = {
    'file store': 'file',
    SQLite: 'sqlite',
    Redis: 'redis',
    PostgreSQL: 'postgres',
  };

  /** One burst: a fresh place in the store, `sessions` records, `processes` workers. */
  const burst = async (configFor: (dir: string) => StoreConfig, expired: boolean) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tk-bench-many-')), 'store');
    const storeConfig = configFor(dir);
    const store = openStore(storeConfig);
    const manager = new SessionManager({ store, tokenEndpoint: as.info.tokenEndpoint, client });
    const issued = await as.call<object[]>('issue', { n: sessions, expiresIn: expired ? 0 : 3600 });
    for (let i = 0; i < sessions; i += 100) {
      await Promise.all(issued.slice(i, i + 100).map((body, j) => manager.adopt(`m${i + j}`, body as never)));
    }
    await store.close();
    await as.call('reset');
    await as.call('latency', { ms: SERVER_MS });
    const go = `${dir}.go`;
    const config = JSON.stringify({
      store: storeConfig,
      tokenEndpoint: as.info.tokenEndpoint,
      client,
      count: sessions,
      go,
    });
    const children = Array.from({ length: processes }, () => startChild('many-worker.ts', [config]));
    await Promise.all(children.map((c) => waitForOutput(c.child, 'ready', 120_000)));
    writeFileSync(go, '');
    const results = await Promise.all(children.map((c) => c.done));
    const outs: WorkerOut[] = results.map((r) => {
      if (r.code !== 0) return { ms: Number.NaN, ok: 0, failed: { [`worker exited ${r.code}`]: sessions } };
      return JSON.parse(r.stdout.trim().split('\n').pop() as string) as WorkerOut;
    });
    const counts = await as.call<Counts>('counts');
    const failed: Record<string, number> = {};
    for (const o of outs) for (const [code, n] of Object.entries(o.failed)) failed[code] = (failed[code] ?? 0) + n;
    return {
      wall: Math.max(...outs.map((o) => o.ms)),
      refreshes: counts.refresh,
      twice: counts.reuseDetected + counts.concurrentReuse + counts.graceReuse,
      failed,
    };
  };

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const { loadavg } = await import('node:os');
  console.log(
    `\n## ${fmt(sessions)} expired sessions x ${processes} processes, every session called at once in every process, ${SERVER_MS} ms token endpoint in its own process\n`,
  );
  console.log(
    `Min / median of ${runs} run(s). Baseline: the same fleet with valid tokens, same run. Load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')} (a shared 2-core machine).\n`,
  );
  console.log(
    '| store | refresh requests | presented twice | failed calls | wall (ms) min / median | valid-token baseline (ms) min / median |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  try {
    for (const [label, configFor] of stores) {
      if (!only.includes(kinds[label] as string)) continue;
      const walls: number[] = [];
      const bases: number[] = [];
      const refreshes: number[] = [];
      const twice: number[] = [];
      const failures: Record<string, number>[] = [];
      for (let r = 0; r < runs; r++) {
        bases.push((await burst(configFor, false)).wall);
        const run = await burst(configFor, true);
        walls.push(run.wall);
        refreshes.push(run.refreshes);
        twice.push(run.twice);
        failures.push(run.failed);
      }
      const failedTotal = failures.map((f) => Object.values(f).reduce((a, b) => a + b, 0));
      const codes = [...new Set(failures.flatMap((f) => Object.keys(f)))];
      console.log(
        `| ${label} | ${refreshes.join(', ')} | ${twice.join(', ')} | ${failedTotal.join(', ')}${
          codes.length ? ` (${codes.join(', ')})` : ''
        } | ${fmt(Math.min(...walls))} / ${fmt(median(walls))} | ${fmt(Math.min(...bases))} / ${fmt(median(bases))} |`,
      );
    }
    console.log(
      `\nLoad average at the end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(', ')}`,
    );
  } finally {
    await cleanup();
    await as.call('close');
  }
}
