// npm run chaos -- --minutes 10 [--store redis|postgres] [--workers 4]
// The chaos test of the CI run, for as long as you like; prints progress and the figures.
import { runChaos } from './chaos.js';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? undefined : args[i + 1];
};
const minutes = Number(arg('minutes') ?? '1');
const workers = Number(arg('workers') ?? '4');
const which = arg('store');
if (!Number.isFinite(minutes) || minutes <= 0 || !Number.isInteger(workers) || workers < 1) {
  console.error('usage: npm run chaos -- [--minutes N] [--store redis|postgres] [--workers N]');
  process.exit(2);
}
if (which !== undefined && which !== 'redis' && which !== 'postgres') {
  console.error(`unknown store ${JSON.stringify(which)}: use redis or postgres`);
  process.exit(2);
}
const stores: ('redis' | 'postgres')[] = which === undefined ? ['redis', 'postgres'] : [which];
let violations = 0;
for (const store of stores) {
  const started = Date.now();
  const report = await runChaos({
    store,
    workers,
    durationMs: (minutes * 60_000) / stores.length,
    log: (line) => console.log(`[${store} ${Math.round((Date.now() - started) / 1000)} s] ${line}`),
  });
  const v = report.violations;
  const count =
    v.reuseOutsideGrace + v.concurrentReuse + v.untypedErrors.length + v.hangs + v.staleStore + v.sessionsLost;
  violations += count;
  console.log(`\n${store}: ${report.seconds} s, ${workers} workers`);
  console.log(
    `  faults: ${report.faults.workerKills} workers killed, ${report.faults.redisRestarts} Redis restarts, ` +
      `${report.faults.backendsTerminated} backends terminated, ${report.faults.answersDropped} answers dropped`,
  );
  console.log(`  calls: ${report.calls}, served ${report.served}, typed errors ${JSON.stringify(report.typedErrors)}`);
  console.log(`  refreshes: ${report.refreshes} (${report.graceReuses} resent within the grace window)`);
  console.log(`  lost answers beyond the grace window: ${report.lostAnswersBeyondGrace}`);
  console.log(`  violations: ${count} ${JSON.stringify(v)}`);
}
process.exit(violations === 0 ? 0 : 1);
