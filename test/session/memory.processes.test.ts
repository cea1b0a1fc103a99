import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { fixture } from '../helpers/child.js';

const run = (n: number, size: number) => {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fixture('session-cache.ts'), String(n), String(size)],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim()) as { growthMb: number; heldStillWorks: boolean; heldIsTheSameObject: boolean };
};

describe('the sessions a manager hands out', () => {
  it('stay in bounded memory: 50,000 sessions touched grow the heap by less than 10 MB', () => {
    const result = run(50_000, 1_000);
    expect(result.growthMb).toBeLessThan(10);
    // A session a caller still holds keeps working, and stays the one object for its id.
    expect(result.heldStillWorks).toBe(true);
    expect(result.heldIsTheSameObject).toBe(true);
  }, 60_000);
});
