import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { unusedPort } from './fake-as.js';

/**
 * A Redis server of a test's own on a free loopback port, so it can be killed and restarted
 * without disturbing the shared one. `persistence: 'aof'` keeps every acknowledged write
 * (appendfsync always); `'none'` keeps nothing across a restart.
 */
export interface PrivateRedis {
  readonly url: string;
  /** SIGKILLs the server (no shutdown save), then starts it again on the same port and data. */
  restart(downMs?: number): Promise<void>;
  kill(): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrivateRedis(persistence: 'aof' | 'none' = 'aof'): Promise<PrivateRedis> {
  const port = await unusedPort();
  const dir = mkdtempSync(join(tmpdir(), 'tk-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no'];
  if (persistence === 'aof') args.push('--appendonly', 'yes', '--appendfsync', 'always');
  else args.push('--appendonly', 'no');
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;

  const start = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => {});
      const ok = await probe
        .connect()
        .then(() => probe.ping())
        .then(
          () => true,
          () => false,
        );
      probe.disconnect();
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('private redis did not start');
  };
  const kill = () => {
    child?.kill('SIGKILL');
    child = undefined;
  };
  const waitExit = (c: ChildProcess | undefined) =>
    c === undefined || c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => c.once('exit', () => resolve()));

  await start();
  return {
    url,
    start,
    kill,
    async restart(downMs = 0) {
      const c = child;
      kill();
      await waitExit(c);
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async stop() {
      const c = child;
      kill();
      await waitExit(c);
    },
  };
}
