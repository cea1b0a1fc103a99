// Every TypeScript block of README.md and docs/**/*.md, type-checked under strict against the
// package's own types (packed, as an app installs it), each block an ES module of its own, as a
// reader would paste it. A block preceded by `<!-- continued -->` continues the one before it
// (they compile as one module); a block that can only be a fragment is marked ```ts ignore and
// skipped, and there are at most three.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, typed by its JSDoc
import { packedApp, root } from '../scripts/packed-app.mjs';

interface Block {
  file: string;
  line: number;
  code: string;
}

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith('.') || e.name === 'node_modules' || e.name === 'api') return [];
    const path = join(dir, e.name);
    return e.isDirectory() ? markdownFiles(path) : e.name.endsWith('.md') ? [path] : [];
  });
}

/** The TypeScript blocks of one page; a block marked `<!-- continued -->` joins the previous one. */
function typescriptBlocks(file: string): { blocks: Block[]; skipped: number } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: Block[] = [];
  let skipped = 0;
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|typescript)\b(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    const code = lines.slice(i + 1, end).join('\n');
    const marker = (lines[i - 1] ?? '').trim() === '' ? (lines[i - 2] ?? '').trim() : (lines[i - 1] ?? '').trim();
    if (/\bignore\b/.test(open[2] as string)) skipped++;
    else if (marker === '<!-- continued -->' && blocks.length > 0) {
      (blocks.at(-1) as Block).code += `\n${code}`;
    } else blocks.push({ file: relative(root, file), line: i + 1, code });
    i = end;
  }
  return { blocks, skipped };
}

const pages = [join(root, 'README.md'), ...markdownFiles(join(root, 'docs'))];
const all = pages.flatMap((p) => typescriptBlocks(p).blocks);
const skipped = pages.reduce((n, p) => n + typescriptBlocks(p).skipped, 0);

/**
 * What the docs' blocks use without declaring it: the values a page introduced in prose or in an
 * earlier block (`manager`), and what an app has at hand (`request`, `user`). Only values: a block
 * that uses one of the package's exports must import it, as a reader's file would.
 */
const PRELUDE = `
type Suite = Parameters<typeof import('tokenkeeper/testing/suite').defineStoreConformance>[0];
// What a page introduced in prose or an earlier block.
declare const manager: import('tokenkeeper').SessionManager;
declare const auth: import('tokenkeeper/web').WebAuth;
// What an app has at hand: the request being served, secrets from its configuration, values
// from elsewhere in its code.
declare const request: Request;
declare const clientSecret: string;
declare const password: string;
declare const tkKey: string;
declare const code: string;
declare const codeVerifier: string;
declare const refreshToken: string;
declare const tokenEndpointResponse: unknown;
declare const incomingAccessToken: string;
declare const user: string;
// Another test framework's functions (jest, mocha), as the conformance suite takes them.
declare const describe: Suite['describe'];
declare const it: Suite['it'];
declare const beforeEach: Suite['beforeEach'];
declare const afterEach: Suite['afterEach'];
declare const expect: Suite['expect'];
`;
/** The reader's own store, which the conformance example imports. */
const MY_STORE = `export declare function myStore(options?: { namespace?: string }): import('tokenkeeper').Store;\n`;

let packed: { app: string; cleanup(): void };
beforeAll(() => {
  packed = packedApp();
}, 60_000);
afterAll(() => packed?.cleanup());

describe('the TypeScript in the docs', () => {
  it('finds the blocks, and few are marked as not compiled', () => {
    expect(all.length).toBeGreaterThan(20);
    expect(skipped).toBeLessThanOrEqual(3);
  });

  it('compiles under strict, every block against the packed package', () => {
    const names = all.map((b, i) => {
      const name = `block-${String(i).padStart(2, '0')}.mts`;
      // `export {}` keeps every block a module of its own (top-level await, no shared names).
      writeFileSync(join(packed.app, name), `${b.code}\nexport {};\n`);
      return name;
    });
    writeFileSync(join(packed.app, 'prelude.d.ts'), PRELUDE);
    writeFileSync(join(packed.app, 'my-store.d.ts'), MY_STORE);
    writeFileSync(join(packed.app, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      join(packed.app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'node16',
          moduleResolution: 'node16',
          target: 'es2022',
          lib: ['es2023', 'dom', 'dom.iterable'],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
        },
        files: ['prelude.d.ts', ...names],
      }),
    );
    const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], {
      cwd: packed.app,
      encoding: 'utf8',
    });
    // Each error named by the page and line it comes from.
    const errors = (r.stdout + r.stderr)
      .split('\n')
      .filter((l) => /error TS/.test(l))
      .map((l) => {
        const m = /^block-(\d+)\.mts\((\d+),\d+\): (.*)$/.exec(l);
        if (!m) return l;
        const b = all[Number(m[1])] as Block;
        return `${b.file}:${b.line + Number(m[2])}: ${m[3]}`;
      });
    expect(errors).toEqual([]);
    expect(r.status).toBe(0);
  }, 120_000);
});
