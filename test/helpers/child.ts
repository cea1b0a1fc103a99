import { type ChildProcess, spawn } from 'node:child_process';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * Inside the project, so the bundles' package imports resolve from its node_modules; one folder
 * per test worker, all removed when the run ends (global-setup.ts).
 */
export const CHILD_BUNDLES = join(ROOT, 'node_modules', '.cache', 'tokenkeeper-children');
const BUNDLES = join(CHILD_BUNDLES, String(process.pid));
const bundles = new Map<string, string>();

/**
 * The script bundled into one ES module from the current source (packages stay imports), once
 * per test file. A child then starts in plain Node: tsx would compile the TypeScript again in
 * every child, about a second of CPU each, which adds up when a test starts dozens of processes
 * on two cores.
 */
function bundled(script: string): string {
  let out = bundles.get(script);
  if (out === undefined) {
    out = join(BUNDLES, `${bundles.size}-${basename(script, '.ts')}.mjs`);
    buildSync({
      entryPoints: [fixture(script)],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      logLevel: 'error',
    });
    bundles.set(script, out);
  }
  return out;
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts a TypeScript fixture (a path relative to test/fixtures) in a real Node process. */
export function startChild(
  script: string,
  args: string[],
  options: { uid?: number; env?: NodeJS.ProcessEnv; stdin?: boolean } = {},
) {
  const child = spawn(process.execPath, [bundled(script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => stdout };
}

/** Runs a fixture to the end; throws with its stderr if it fails. */
export async function runChild(script: string, args: string[], options?: { uid?: number; env?: NodeJS.ProcessEnv }) {
  const result = await startChild(script, args, options).done;
  if (result.code !== 0) throw new Error(`${script} ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
  return result;
}

/** Resolves once the child prints a line containing `text` (bounded by `ms`). */
export function waitForOutput(child: ChildProcess, text: string, ms = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`child did not print ${JSON.stringify(text)} within ${ms} ms`)),
      ms,
    );
    child.stdout?.on('data', (d: Buffer | string) => {
      seen += d.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`child exited before printing ${JSON.stringify(text)}`));
    });
  });
}
