import { readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
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
  onSuccess: dropBareChunkImports,
});

/**
 * esbuild's code splitting writes `import "./chunk-X.js";` for chunks an entry reaches only to
 * keep evaluation order. The package is `sideEffects: false`, so app bundlers drop those imports
 * anyway, and esbuild warns about each (`ignored-bare-import`) when the package is linked rather
 * than installed. Nothing in them runs for its effect: every chunk whose exports a file uses is
 * imported by name. Emptied in place (the line stays, so the source maps still match).
 */
async function dropBareChunkImports(): Promise<void> {
  for (const file of await readdir('dist')) {
    if (!file.endsWith('.js')) continue;
    const path = `dist/${file}`;
    const text = await readFile(path, 'utf8');
    const stripped = text.replace(/^import "\.\/chunk-[A-Z0-9]+\.js";$/gm, '');
    if (stripped !== text) await writeFile(path, stripped);
  }
}
