import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const out = await build({
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  legalComments: 'none',
  write: false,
  metafile: true,
  stdin: {
    contents: process.argv[2] ?? "export { SessionManager, indexedDbStore } from './src/index.ts';",
    resolveDir: process.cwd(),
    loader: 'ts',
  },
});
const o = Object.values(out.metafile.outputs)[0];
const rows = Object.entries(o.inputs)
  .map(([k, v]) => [k, v.bytesInOutput])
  .sort((a, b) => b[1] - a[1]);
for (const [k, v] of rows) console.log(String(v).padStart(7), k);
console.log(
  'total min',
  out.outputFiles[0].contents.length,
  'gz',
  gzipSync(out.outputFiles[0].contents, { level: 9 }).length,
);
