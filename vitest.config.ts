import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * A test file needs a service or a process when it is named so (`*.processes.test.ts`,
 * `*.browser.test.ts`) or when it uses one: Redis, PostgreSQL, child processes, Chromium, the
 * Secret Service, the built package. Read from the files themselves, so a new test cannot be
 * filed in the wrong project by forgetting a list.
 */
const NEEDS_MORE =
  /helpers\/(services|child|browser|secret-service|private-redis|sign-in|dpop-login)|node:child_process|playwright-core|from 'ioredis'|from 'pg'|\bdist\//;
function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' || e.name === 'helpers' ? [] : testFiles(path);
    return e.name.endsWith('.test.ts') ? [path] : [];
  });
}
const all = testFiles('test');
const unit = all.filter(
  (f) => !/\.(processes|browser)\.test\.ts$/.test(f) && !NEEDS_MORE.test(readFileSync(f, 'utf8')),
);
const rest = all.filter((f) => !unit.includes(f));

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        // `npm run test:unit`: no service, no process, files in parallel; run first by `npm test`.
        test: { name: 'unit', include: unit, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'services',
          include: rest,
          sequence: { groupOrder: 1 },
          // Child-process tests spawn up to 8 Node processes each; on 2 cores running
          // test files in parallel only makes them slower and flakier.
          fileParallelism: false,
        },
      },
    ],
  },
});
