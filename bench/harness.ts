import { Bench } from 'tinybench';

export interface Pair {
  /** What is measured, e.g. "memoryStore.get". */
  name: string;
  /** The baseline it is compared with, measured in the same run. */
  baselineName: string;
  ours: () => unknown | Promise<unknown>;
  baseline: () => unknown | Promise<unknown>;
}

export interface Row {
  name: string;
  opsPerSec: number;
  baselineName: string;
  baselineOpsPerSec: number;
}

/** Measures each pair in one interleaved run (these machines are noisy) and prints ratios. */
export async function comparePairs(title: string, pairs: Pair[], time = 500): Promise<Row[]> {
  const bench = new Bench({ time, warmupTime: 100 });
  for (const p of pairs) {
    if (!bench.getTask(`baseline: ${p.baselineName}`)) bench.add(`baseline: ${p.baselineName}`, p.baseline);
    bench.add(`ours: ${p.name}`, p.ours);
  }
  await bench.run();
  const hz = (name: string) => {
    const task = bench.getTask(name);
    const r = task?.result as { throughput?: { mean: number } } | undefined;
    return r?.throughput?.mean ?? Number.NaN;
  };
  const rows = pairs.map((p) => ({
    name: p.name,
    opsPerSec: hz(`ours: ${p.name}`),
    baselineName: p.baselineName,
    baselineOpsPerSec: hz(`baseline: ${p.baselineName}`),
  }));
  printRows(title, rows);
  return rows;
}

export function printRows(title: string, rows: Row[]): void {
  console.log(`\n## ${title}\n`);
  console.log('| ours | ops/s | baseline | ops/s | ours/baseline |');
  console.log('| --- | ---: | --- | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${fmt(r.opsPerSec)} | ${r.baselineName} | ${fmt(r.baselineOpsPerSec)} | ${(r.opsPerSec / r.baselineOpsPerSec).toFixed(2)}x |`,
    );
  }
}

export function fmt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

export interface ThroughputPair {
  name: string;
  baselineName: string;
  ours: (i: number) => Promise<unknown>;
  baseline: (i: number) => Promise<unknown>;
}

/** Ops per second of `op` with `concurrency` callers looping for `ms`. */
async function throughput(op: (i: number) => Promise<unknown>, concurrency: number, ms: number): Promise<number> {
  let count = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = w; performance.now() < end; i += concurrency) {
        await op(i);
        count++;
      }
    }),
  );
  return count / (ms / 1000);
}

/**
 * Throughput with many concurrent callers (what a server sees), ours and baseline alternating
 * over several rounds; reports the median of each.
 */
export async function compareThroughput(
  title: string,
  pairs: ThroughputPair[],
  { concurrency = 64, rounds = 5, ms = 400 } = {},
): Promise<Row[]> {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const rows: Row[] = [];
  for (const p of pairs) {
    await throughput(p.baseline, concurrency, 100); // warm up both
    await throughput(p.ours, concurrency, 100);
    const ours: number[] = [];
    const base: number[] = [];
    for (let r = 0; r < rounds; r++) {
      base.push(await throughput(p.baseline, concurrency, ms));
      ours.push(await throughput(p.ours, concurrency, ms));
    }
    rows.push({ name: p.name, opsPerSec: median(ours), baselineName: p.baselineName, baselineOpsPerSec: median(base) });
  }
  printRows(`${title} (${concurrency} concurrent callers, median of ${rounds} rounds)`, rows);
  return rows;
}
