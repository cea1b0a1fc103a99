// Runs against the built package (npm test builds first), as a user would import it.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

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
      if (subpath === './package.json' || subpath === './browser') continue;
      const name = subpath === '.' ? 'tokenkeeper' : `tokenkeeper/${subpath.slice(2)}`;
      const t = target as { import: string; require: string; types: string };
      expect(existsSync(join(root, t.import)), t.import).toBe(true);
      expect(existsSync(join(root, t.require)), t.require).toBe(true);
      expect(existsSync(join(root, t.types)), t.types).toBe(true);
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
    const target = (pkg.exports['./browser'] as { import: string }).import;
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
