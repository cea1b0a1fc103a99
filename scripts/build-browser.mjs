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

const BUDGET_BYTES = Number(process.env.TOKENKEEPER_SIZE_BUDGET ?? 19 * 1024);
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

const sizes = {};
for (const [label, contents] of [
  ['SessionManager + indexedDbStore', "export { SessionManager, indexedDbStore } from './src/index.ts';"],
  ['SessionManager + webStorageStore', "export { SessionManager, webStorageStore } from './src/index.ts';"],
  ['the whole core (dist/browser/tokenkeeper.js)', "export * from './src/index.ts';"],
]) {
  const out = await build({
    ...common,
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts' },
    write: false,
  });
  const code = out.outputFiles[0].contents;
  sizes[label] = { minified: code.length, gzipped: gzipSync(code, { level: 9 }).length };
}
// oauth4webapi's share: the part of the first bundle that is not ours.
const ours = await build({
  ...common,
  stdin: {
    contents: "export { SessionManager, indexedDbStore } from './src/index.ts';",
    resolveDir: process.cwd(),
    loader: 'ts',
  },
  external: ['oauth4webapi'],
  write: false,
});
const oursGz = gzipSync(ours.outputFiles[0].contents, { level: 9 }).length;

const main = sizes['SessionManager + indexedDbStore'].gzipped;
if (process.argv.includes('--report')) {
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
