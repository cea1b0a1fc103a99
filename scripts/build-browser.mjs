#!/usr/bin/env node
/**
 * The browser build of the core: one self-contained, minified ES module (oauth4webapi
 * included) at dist/browser/tokenkeeper.js, for a <script type="module"> or a CDN. Bundlers
 * should import "tokenkeeper" instead, and tree-shake what they do not use.
 *
 * Also measures what an app that uses only SessionManager + indexedDbStore ships, gzipped,
 * and fails if it grows past the budget. `npm run size` prints the figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const BUDGET_BYTES = Number(process.env.TOKENKEEPER_SIZE_BUDGET ?? 25 * 1024);
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

/** Minified and gzipped sizes of a bundle of `contents` (an entry module's text). */
async function measure(contents, external = []) {
  const out = await build({
    ...common,
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts' },
    external,
    write: false,
  });
  return sizeOf(out.outputFiles[0].contents);
}
function sizeOf(code) {
  return { minified: code.length, gzipped: gzipSync(code, { level: 9 }).length };
}

const appEntry = "export { SessionManager, indexedDbStore } from './src/index.ts';";
const app = await measure(appEntry);
const main = app.gzipped;

if (process.argv.includes('--report')) {
  const fullJs = full.outputFiles.find((f) => f.path.endsWith('.js'));
  const sizes = {
    'SessionManager + indexedDbStore': app,
    'SessionManager + webStorageStore': await measure(
      "export { SessionManager, webStorageStore } from './src/index.ts';",
    ),
    'the whole core (dist/browser/tokenkeeper.js)': sizeOf(fullJs.contents),
  };
  // oauth4webapi's share: the part of the app's bundle that is not ours.
  const oursGz = (await measure(appEntry, ['oauth4webapi'])).gzipped;
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  for (const [label, s] of Object.entries(sizes)) {
    console.log(`${label.padEnd(46)} ${kb(s.minified).padStart(9)} minified ${kb(s.gzipped).padStart(8)} gzipped`);
  }
  console.log(
    `${'  tokenkeeper code alone (oauth4webapi external)'.padEnd(46)} ${''.padStart(18)} ${kb(oursGz).padStart(8)} gzipped`,
  );
  console.log(`budget for SessionManager + indexedDbStore: ${kb(BUDGET_BYTES)} gzipped`);
}
if (main > BUDGET_BYTES) {
  console.error(`SessionManager + indexedDbStore is ${main} bytes gzipped, over the ${BUDGET_BYTES}-byte budget.`);
  process.exit(1);
}
