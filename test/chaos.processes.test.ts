import { describe, expect, it } from 'vitest';
import { runChaos } from './chaos/chaos.js';

// About a minute in all. `npm run chaos -- --minutes 10` runs the same for longer, by hand.
describe('chaos: 4 workers, faults injected, a strict rotating server', () => {
  for (const store of ['redis', 'postgres'] as const) {
    it(`${store}: the same refresh token is never sent twice, nothing acknowledged is lost, no hang, no lost session`, async () => {
      const report = await runChaos({ store, durationMs: 20_000 });
      console.log(`chaos ${store}: ${JSON.stringify(report)}`);
      expect(report.violations).toEqual({
        reuseOutsideGrace: 0,
        concurrentReuse: 0,
        untypedErrors: [],
        hangs: 0,
        staleStore: 0,
        sessionsLost: 0,
      });
      expect(report.lostAnswersBeyondGrace).toBe(0);
      expect(report.refreshes).toBeGreaterThan(10);
      expect(report.served).toBeGreaterThan(report.calls / 2);
      expect(report.faults.workerKills).toBeGreaterThan(3);
      if (store === 'redis') expect(report.faults.redisRestarts).toBeGreaterThan(2);
      else expect(report.faults.backendsTerminated).toBeGreaterThan(10);
    }, 90_000);
  }
});
