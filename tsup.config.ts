import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

/**
 * One entry per subpath of package.json#exports, so the two cannot drift: `.` is src/index.ts,
 * `./x/y` is src/exports/x-y.ts, built to dist/x-y.{js,cjs,d.ts}. `./browser` is built by
 * scripts/build-browser.mjs; test/package.test.ts checks every subpath builds and is documented.
 */
export function entries(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
    exports: Record<string, unknown>;
  };
  const out: Record<string, string> = {};
  for (const subpath of Object.keys(pkg.exports)) {
    if (subpath === './package.json' || subpath === './browser') continue;
    if (subpath === '.') out.index = 'src/index.ts';
    else {
      const name = subpath.slice(2).replaceAll('/', '-');
      out[name] = `src/exports/${name}.ts`;
    }
  }
  return out;
}

export default defineConfig({
  // The command line (package.json#bin) is built beside the subpaths, not exported as one.
  entry: { ...entries(), cli: 'src/cli/main.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: true,
});
