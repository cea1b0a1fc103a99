import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    file: 'src/file.ts',
    testing: 'src/testing.ts',
    'testing-suite': 'src/testing/suite.ts',
    redis: 'src/redis.ts',
    postgres: 'src/postgres.ts',
    sqlite: 'src/sqlite.ts',
    keyv: 'src/keyv.ts',
    podio: 'src/podio.ts',
    sharetribe: 'src/sharetribe.ts',
    solid: 'src/solid.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: true,
});
