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
