// Runs against the built package (npm test builds first), as a user would import it.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script, typed by its JSDoc
import { packedApp } from '../scripts/packed-app.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// npm test builds first; run alone on a fresh clone, the file builds the package itself rather
// than skip (a skipped package test would pass a package nobody checked).
if (!existsSync(join(root, 'dist/index.js')) || !existsSync(join(root, 'dist/browser/tokenkeeper.js'))) {
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
}

describe('package.json#exports', () => {
  it('every subpath has its entry file, and the README documents it', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const subpath of Object.keys(pkg.exports)) {
      if (subpath === './package.json' || subpath === '.') continue;
      const name = `tokenkeeper/${subpath.slice(2)}`;
      expect(readme.includes(`'${name}'`) || readme.includes(`\`${name}\``), `${name} in README.md`).toBe(true);
      if (subpath === './browser') continue; // built by scripts/build-browser.mjs
      const entry = join(root, 'src/exports', `${subpath.slice(2).replaceAll('/', '-')}.ts`);
      expect(existsSync(entry), entry).toBe(true);
    }
  });
});

describe('the built package', () => {
  it('keeps node: imports out of the core (browser-safe) entry and its chunks', () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(join(root, 'dist', file), 'utf8');
      expect(text, file).not.toMatch(/from\s*['"]node:|require\(['"]node:|from\s*['"](fs|os|path|crypto)['"]/);
      for (const m of text.matchAll(/from\s*['"]\.\/([^'"]+)['"]/g)) visit(m[1] as string);
    };
    visit('index.js');
    expect(seen.size).toBeGreaterThan(0);
  });

  it('ships the tokenkeeper command (package.json#bin): executable, with a shebang, and its help runs', () => {
    const bin = join(root, pkg.bin.tokenkeeper);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const help = execFileSync(bin, ['--help'], { cwd: root, encoding: 'utf8' });
    expect(help).toContain('Usage: tokenkeeper');
    expect(help).toContain('Exit codes:');
  });

  it('loads every subpath export through ESM import and CommonJS require', () => {
    for (const [subpath, target] of Object.entries(pkg.exports as Record<string, unknown>)) {
      if (subpath === './package.json') continue;
      const name = subpath === '.' ? 'tokenkeeper' : `tokenkeeper/${subpath.slice(2)}`;
      type Condition = { types: string; default: string };
      const t = target as { import: Condition; require: Condition };
      for (const file of [t.import.types, t.import.default, t.require.types, t.require.default]) {
        expect(existsSync(join(root, file)), file).toBe(true);
      }
      // Each condition's types describe its own format (a .d.cts for require).
      expect(t.import.types).toMatch(/\.d\.ts$/);
      expect(t.require.types).toMatch(/\.d\.cts$/);
      if (subpath === './browser') continue;
      if (subpath === './testing') continue; // imports vitest, which only loads inside a test run
      const esm = execFileSync(
        process.execPath,
        ['--input-type=module', '-e', `import * as m from '${name}'; console.log(Object.keys(m).sort().join())`],
        { cwd: root, encoding: 'utf8' },
      );
      const cjs = execFileSync(process.execPath, ['-e', `console.log(Object.keys(require('${name}')).sort().join())`], {
        cwd: root,
        encoding: 'utf8',
      });
      expect(esm.trim().length).toBeGreaterThan(0);
      expect(cjs.trim()).toBe(esm.trim());
    }
  });

  it('ships a self-contained browser build: one ES module, no imports, no Node built-ins', async () => {
    const target = (pkg.exports['./browser'] as { import: { default: string } }).import.default;
    const text = readFileSync(join(root, target), 'utf8');
    // What the module itself imports, as esbuild parses it (words in messages do not count).
    const { metafile } = await build({
      entryPoints: [join(root, target)],
      bundle: true,
      external: ['*'],
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'error',
    });
    expect(Object.values(metafile.outputs).flatMap((o) => o.imports)).toEqual([]);
    expect(text).not.toMatch(/require\(|["']node:/);
    const mod = await import(join(root, target));
    for (const name of ['SessionManager', 'indexedDbStore', 'webStorageStore', 'browserEncryptionKey', 'memoryStore']) {
      expect(typeof mod[name], name).toBe('function');
    }
  });

  it('npm run size: measures the packed package as an SPA imports it, prints both figures, fails over either', () => {
    const size = (env: NodeJS.ProcessEnv = {}) =>
      spawnSync(process.execPath, [join(root, 'scripts/build-browser.mjs'), '--report'], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, ...env },
      });
    const ok = size();
    expect(ok.status, ok.stderr).toBe(0);
    const figure = (label: string) => {
      const line = ok.stdout.split('\n').find((l) => l.includes(label)) ?? '';
      return Number(/([\d.]+) KB gzipped \(budget/.exec(line)?.[1]);
    };
    const upFront = figure('up front: SessionManager + indexedDbStore + getAccessToken/fetch');
    const login = figure('the login route: that + authorize()/callback()');
    // The login half (authorize/callback, ID token and JWKS validation, PAR) loads on first use.
    expect(login).toBeGreaterThan(upFront);
    expect(ok.stdout).toMatch(/login +authorize-[A-Z0-9]+-[A-Z0-9]+\.js/);
    const over = size({ TOKENKEEPER_SIZE_UP_FRONT: '1000', TOKENKEEPER_SIZE_LOGIN: '2000' });
    expect(over.status).toBe(1);
    expect(over.stderr).toMatch(/up front \d+ bytes > 1000; with the login route \d+ bytes > 2000/);
  }, 120_000);

  it('has a lock file that npm ci accepts on a machine whose registry lacks other platforms', () => {
    // scripts/complete-lockfile.mjs adds these; a later `npm install` must not drop them.
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    const missing: string[] = [];
    for (const pkg of Object.values(lock.packages) as { optionalDependencies?: Record<string, string> }[]) {
      for (const [name, spec] of Object.entries(pkg.optionalDependencies ?? {})) {
        if (/^\d+\.\d+\.\d+/.test(spec) && !lock.packages[`node_modules/${name}`]) missing.push(name);
      }
    }
    expect(missing, 'run node scripts/complete-lockfile.mjs').toEqual([]);
  });

  it('declares no internals in its public types', () => {
    for (const file of readdirSync(join(root, 'dist')).filter((f) => f.endsWith('.d.ts'))) {
      const text = readFileSync(join(root, 'dist', file), 'utf8');
      expect(text, file).not.toMatch(/\b_(apply|remove|updatedAt)\b/);
    }
  });

  it('ships only dist', () => {
    expect(pkg.files).toEqual(['dist']);
    expect(readdirSync(join(root, 'dist')).some((f) => f.endsWith('.d.ts'))).toBe(true);
  });
});

describe('the packed package, as consumers get it', () => {
  let packed: ReturnType<typeof packedApp>;
  beforeAll(() => {
    packed = packedApp();
  }, 60_000);
  afterAll(() => packed?.cleanup());
  const bin = (name: string) => join(root, 'node_modules/.bin', name);

  it('has types right for every subpath and module system (arethetypeswrong, node16 profile)', () => {
    const r = spawnSync(bin('attw'), [packed.tarball, '--profile', 'node16', '--format', 'ascii'], {
      encoding: 'utf8',
    });
    // attw exits non-zero on any problem of the profile; its table names the subpath and the kind.
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const problems = r.stdout.split('\n').filter((l) => /💀|👺|⚠️|❗|🐛|🥴|❌/u.test(l) && !l.includes('ignored'));
    expect(problems).toEqual([]);
    expect(r.stdout).toContain('"tokenkeeper/express"');
  }, 120_000);

  it('passes publint, suggestions included', async () => {
    const { publint } = await import('publint');
    const { formatMessage } = await import('publint/utils');
    const tarball = readFileSync(packed.tarball);
    const { messages, pkg: manifest } = await publint({
      pack: { tarball: tarball.buffer.slice(tarball.byteOffset, tarball.byteOffset + tarball.byteLength) },
      level: 'suggestion',
      strict: true,
    });
    expect(messages.map((m) => `${m.type}: ${formatMessage(m, manifest)}`)).toEqual([]);
  }, 60_000);

  it('bundles into an app without a single esbuild warning (browser app, and a Node app of every subpath)', async () => {
    const peers = ['ioredis', 'pg', 'better-sqlite3', 'keyv', '@napi-rs/keyring', '@opentelemetry/api', 'vitest'];
    const subpaths = Object.keys(pkg.exports).filter(
      (s) => s !== './package.json' && s !== './browser' && !s.startsWith('./testing'),
    );
    const nodeApp = subpaths
      .map((s, i) => `export * as m${i} from '${s === '.' ? 'tokenkeeper' : `tokenkeeper/${s.slice(2)}`}';`)
      .join('\n');
    const browserApp =
      "import { SessionManager, indexedDbStore } from 'tokenkeeper';\nexport const manager = new SessionManager({ store: indexedDbStore(), issuer: 'https://as.example', client: { clientId: 'spa' } });";
    for (const [contents, platform] of [
      [browserApp, 'browser'],
      [nodeApp, 'node'],
    ] as const) {
      const out = await build({
        stdin: { contents, resolveDir: packed.app, sourcefile: `${platform}-app.ts`, loader: 'ts' },
        bundle: true,
        splitting: true,
        format: 'esm',
        platform,
        minify: true,
        write: false,
        outdir: join(packed.app, 'out'),
        external: platform === 'node' ? peers : [],
        logLevel: 'silent',
      });
      expect(out.errors).toEqual([]);
      expect(
        out.warnings.map((w) => `${w.id}: ${w.text} (${w.location?.file})`),
        platform,
      ).toEqual([]);
    }
  }, 60_000);

  it('compiles for a CommonJS TypeScript consumer (.cts, module node16, strict)', () => {
    writeFileSync(
      join(packed.app, 'consumer.cts'),
      `import { SessionManager, memoryStore, isTokenkeeperError } from 'tokenkeeper';
import { fileStore } from 'tokenkeeper/file';
import { redisStore } from 'tokenkeeper/redis';
import { expressAuth } from 'tokenkeeper/express';
import type { Store } from 'tokenkeeper/store-kit';

const store: Store = fileStore({ namespace: 'my_app' });
const manager = new SessionManager({ store, issuer: 'https://as.example', client: { clientId: 'cli' } });
export async function token(): Promise<string | undefined> {
  try {
    return await (await manager.get('me'))?.getAccessToken();
  } catch (error) {
    if (isTokenkeeperError(error)) return undefined;
    throw error;
  }
}
export const others = [memoryStore, redisStore, expressAuth];
`,
    );
    writeFileSync(
      join(packed.app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'node16',
          moduleResolution: 'node16',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
        },
        files: ['consumer.cts'],
      }),
    );
    const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', packed.app], {
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);
});
