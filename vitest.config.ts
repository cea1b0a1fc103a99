import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Child-process tests spawn up to 8 Node processes each; on 2 cores running
    // test files in parallel only makes them slower and flakier.
    fileParallelism: false,
  },
});
