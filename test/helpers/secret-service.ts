import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  // A bus without service activation: nothing but our one keyring daemon may take the Secret
  // Service name (an auto-started second daemon, locked and without a prompter, would race it).
  const config = join(home, 'bus.conf');
  writeFileSync(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:tmpdir=${home}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
<limit name="max_connections_per_user">100000</limit><limit name="max_completed_connections">100000</limit>
<limit name="max_incomplete_connections">10000</limit></busconfig>`,
  );
  const bus = spawn('dbus-daemon', [`--config-file=${config}`, '--nofork', '--nopidfile', '--print-address=1'], {
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
  let stopping = false;
  keyring.on('exit', (code, signal) => {
    if (!stopping)
      process.stderr.write(`the test Secret Service (gnome-keyring-daemon) exited early: ${code} ${signal}\n`);
  });
  let failed: Error | undefined;
  keyring.on('error', (error) => {
    failed = new Error(`gnome-keyring-daemon could not run (${error.message}): apt-get install -y gnome-keyring`);
  });
  keyring.stdin?.end('test-keyring-password\n');
  process.env.DBUS_SESSION_BUS_ADDRESS = address;
  // Ready once a secret can be written and read back.
  const { AsyncEntry } = await import('@napi-rs/keyring');
  const stop = async () => {
    stopping = true;
    for (const c of children.reverse()) c.kill();
    rmSync(home, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    try {
      // Made in the loop: an entry pinned to the Secret Service fails as it is made while there is none.
      const probe = new AsyncEntry('tokenkeeper-test-probe', 'probe', { linux: { store: 'secret-service' } });
      await probe.setPassword('ready');
      if ((await probe.getPassword()) === 'ready') break;
    } catch (error) {
      if (failed !== undefined || i >= 150) {
        await stop();
        throw failed ?? new Error(`the Secret Service did not come up in 15 s: ${(error as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { env: { DBUS_SESSION_BUS_ADDRESS: address }, stop };
}
