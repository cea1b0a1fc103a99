import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real Secret Service for the keychain tests: a private D-Bus session bus and GNOME Keyring on
 * it, unlocked, in a home of their own; this process talks to it (DBUS_SESSION_BUS_ADDRESS).
 * Needs Debian's dbus and gnome-keyring packages (.ci/run installs them).
 */
export async function startSecretService(): Promise<{ env: NodeJS.ProcessEnv; stop(): Promise<void> }> {
  const home = mkdtempSync(join(tmpdir(), 'tk-keyring-'));
  const env = { ...process.env, HOME: home, XDG_RUNTIME_DIR: home, XDG_DATA_HOME: join(home, 'data') };
  const children: ChildProcess[] = [];
  const lineOf = (child: ChildProcess, what: string, match: RegExp) =>
    new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), 10_000);
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`${what} could not run (${error.message}): apt-get install -y dbus gnome-keyring`));
      });
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = match.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1] ?? m[0]);
        }
      });
    });
  const bus = spawn('dbus-daemon', ['--session', '--nofork', '--nopidfile', '--print-address=1'], {
    env,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  children.push(bus);
  const address = await lineOf(bus, 'dbus-daemon', /^(unix:[^\n]+)\n/);
  // In the foreground, so it is ours to stop; it says nothing when ready, so the probe below asks.
  const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
    env: { ...env, DBUS_SESSION_BUS_ADDRESS: address },
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  children.push(keyring);
  let failed: Error | undefined;
  keyring.on('error', (error) => {
    failed = new Error(`gnome-keyring-daemon could not run (${error.message}): apt-get install -y gnome-keyring`);
  });
  keyring.stdin?.end('test-keyring-password\n');
  process.env.DBUS_SESSION_BUS_ADDRESS = address;
  // Ready once a secret can be written and read back.
  const { AsyncEntry } = await import('@napi-rs/keyring');
  const probe = new AsyncEntry('tokenkeeper-test-probe', 'probe', { linux: { store: 'secret-service' } });
  for (let i = 0; ; i++) {
    try {
      await probe.setPassword('ready');
      if ((await probe.getPassword()) === 'ready') break;
    } catch (error) {
      if (failed !== undefined) throw failed;
      if (i >= 50) throw new Error(`the Secret Service did not come up: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    env: { DBUS_SESSION_BUS_ADDRESS: address },
    async stop() {
      for (const c of children.reverse()) c.kill();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
