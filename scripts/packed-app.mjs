/**
 * The package as an app gets it: `npm pack` of the built package, unpacked into a folder of its
 * own, beside an app folder whose `node_modules/tokenkeeper` links to it (as `npm link`, a
 * workspace or a `file:` dependency does: the strictest case, since esbuild, for one, reports
 * problems in linked packages that it keeps quiet about under node_modules). The project's
 * other dependencies are linked into a shared `node_modules` above both, so imports resolve.
 *
 * Used by test/package.test.ts (attw, publint, bundling, a CommonJS TypeScript consumer) and by
 * scripts/build-browser.mjs (`npm run size` measures what an app bundles, not src/).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * @returns {{ dir: string, app: string, pkg: string, tarball: string, cleanup(): void }}
 *   `app`: where an app's sources go (it imports 'tokenkeeper'); `pkg`: the unpacked package.
 */
export function packedApp() {
  const dir = mkdtempSync(join(tmpdir(), 'tk-packed-'));
  try {
    const [{ filename }] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
    const tarball = join(dir, filename);
    const pkg = join(dir, 'pkg');
    mkdirSync(pkg);
    execFileSync('tar', ['xzf', tarball, '-C', pkg, '--strip-components=1']);
    const modules = join(dir, 'node_modules');
    mkdirSync(modules);
    for (const name of readdirSync(join(root, 'node_modules'))) {
      if (name === 'tokenkeeper' || name.startsWith('.')) continue;
      symlinkSync(join(root, 'node_modules', name), join(modules, name));
    }
    const app = join(dir, 'app');
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    symlinkSync(pkg, join(app, 'node_modules', 'tokenkeeper'));
    return { dir, app, pkg, tarball, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
