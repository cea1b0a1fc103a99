// Adds package-lock.json entries for optional platform binaries (other OSes' @biomejs/cli-*,
// @rollup/rollup-*, ...) that the npm registry mirror of our machines does not serve. npm then
// leaves them out of the lock, and `npm ci` (npm 11) refuses a lock without them. Their os/cpu/
// libc are read off the package name, so `npm ci` skips them on platforms they are not for.
// Run after `npm install` changes the lock: `node scripts/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages;
const OS = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'openharmony', 'sunos', 'win32', 'aix', 'netbsd'];
const CPU = ['arm64', 'arm', 'x64', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x', 'mips64el', 'ppc'];
let added = 0;

for (const [where, pkg] of Object.entries(packages)) {
  for (const [name, spec] of Object.entries(pkg.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (packages[key] || packages[`${where}/${key}`]) continue;
    const parts = name.split('/').pop().split('-');
    const os = parts.find((p) => OS.includes(p));
    const cpu = parts.find((p) => CPU.includes(p) || p === 'eabi') ?? (parts.includes('arm') ? 'arm' : undefined);
    if (!os || !/^\d+\.\d+\.\d+/.test(spec)) continue; // only exact-pinned platform binaries
    const entry = { version: spec, optional: true, os: [os] };
    if (pkg.dev) entry.dev = true;
    if (cpu) entry.cpu = [cpu === 'eabi' ? 'arm' : cpu];
    if (parts.some((p) => p.startsWith('musl'))) entry.libc = ['musl'];
    else if (os === 'linux' && parts.some((p) => p === 'gnu' || p.startsWith('gnueabi'))) entry.libc = ['glibc'];
    packages[key] = entry;
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} optional platform entr${added === 1 ? 'y' : 'ies'}`);
