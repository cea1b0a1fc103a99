#!/usr/bin/env node
/**
 * The browser build of the core: one self-contained, minified ES module (oauth4webapi
 * included) at dist/browser/tokenkeeper.js, for a <script type="module"> or a CDN. Bundlers
 * should import "tokenkeeper" instead, and tree-shake what they do not use.
 *
 * Also measures what an app that uses SessionManager (authorize/callback included: they are its
 * methods) + indexedDbStore ships, gzipped, and fails if it grows past the budget. `npm run size`
 * prints the figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

// Issue #12 aimed at 16 KB; see docs/guide/browser.md ("Size") for where the bytes go today.
const BUDGET_BYTES = Number(process.env.TOKENKEEPER_SIZE_BUDGET ?? 32 * 1024);
const common = {
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  legalComments: 'none',
  logLevel: 'error',
};

const full = await build({
  ...common,
  entryPoints: ['src/index.ts'],
  outfile: 'dist/browser/tokenkeeper.js',
  sourcemap: true,
  write: false,
  metafile: true,
});
mkdirSync('dist/browser', { recursive: true });
for (const file of full.outputFiles) writeFileSync(file.path, file.contents);
const nodeImports = Object.keys(full.metafile.inputs).filter((i) => i.startsWith('node:'));
if (nodeImports.length > 0) throw new Error(`the browser build imports ${nodeImports.join(', ')}`);

/**
 * Minified and gzipped sizes of what an app whose entry module is `contents` loads up front,
 * bundled the way app bundlers do (code splitting): its entry chunk and the chunks that imports
 * statically. Code behind `import()` (encryption, the default memory store, the device flow)
 * loads only when used, and is reported as `lazy`.
 */
async function measure(contents, external = []) {
  const out = await build({
    ...common,
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts', sourcefile: 'app.ts' },
    external,
    splitting: true,
    outdir: 'size',
    metafile: true,
    write: false,
  });
  const files = new Map(out.outputFiles.map((f) => [relative(process.cwd(), f.path), f.contents]));
  const outputs = out.metafile.outputs;
  // Modules behind import() are entry points too: the app's own is the one built from stdin.
  const entry = Object.keys(outputs).find((k) => outputs[k].entryPoint === 'app.ts');
  const eager = new Set();
  const visit = (file) => {
    if (eager.has(file)) return;
    eager.add(file);
    for (const i of outputs[file].imports) if (i.kind === 'import-statement' && !i.external) visit(i.path);
  };
  visit(entry);
  // Gzipped together, as an app bundler emits the entry's static imports (one file).
  const sum = (names) => sizeOf(Buffer.concat(names.map((n) => files.get(n))));
  const lazy = Object.keys(outputs).filter((k) => k.endsWith('.js') && !eager.has(k));
  return { ...sum([...eager]), lazy: sum(lazy) };
}
function sizeOf(code) {
  return { minified: code.length, gzipped: gzipSync(code, { level: 9 }).length };
}

// Imported from their modules: an app bundler (Rollup, Vite) tree-shakes the package index's
// other re-exports away before splitting; esbuild's splitting would keep them reachable.
const appEntry =
  "export { SessionManager } from './src/session/manager.ts'; export { indexedDbStore } from './src/store/browser/indexeddb.ts';";
const app = await measure(appEntry);
const main = app.gzipped;

if (process.argv.includes('--report')) {
  const fullJs = full.outputFiles.find((f) => f.path.endsWith('.js'));
  const sizes = {
    'SessionManager + indexedDbStore': app,
    'SessionManager + webStorageStore': await measure(
      "export { SessionManager } from './src/session/manager.ts'; export { webStorageStore } from './src/store/browser/web-storage.ts';",
    ),
    'the whole core (dist/browser/tokenkeeper.js)': sizeOf(fullJs.contents),
  };
  // oauth4webapi's share: the part of the app's bundle that is not ours.
  const oursGz = (await measure(appEntry, ['oauth4webapi'])).gzipped;
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  for (const [label, s] of Object.entries(sizes)) {
    console.log(`${label.padEnd(46)} ${kb(s.minified).padStart(9)} minified ${kb(s.gzipped).padStart(8)} gzipped`);
    if (s.lazy?.gzipped) {
      console.log(
        `${'  + loaded on first use (discovery, encryption, memory store, device flow, DPoP keys, JWT client auth, logout, lock without Web Locks)'.padEnd(46)} ${kb(s.lazy.minified).padStart(9)} minified ${kb(s.lazy.gzipped).padStart(8)} gzipped`,
      );
    }
  }
  console.log(
    `${'  tokenkeeper code alone (oauth4webapi external)'.padEnd(46)} ${''.padStart(18)} ${kb(oursGz).padStart(8)} gzipped`,
  );
  console.log(`budget for SessionManager (with authorize/callback) + indexedDbStore: ${kb(BUDGET_BYTES)} gzipped`);
}
if (main > BUDGET_BYTES) {
  console.error(`SessionManager + indexedDbStore is ${main} bytes gzipped, over the ${BUDGET_BYTES}-byte budget.`);
  process.exit(1);
}
