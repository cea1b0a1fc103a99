// The chaos run: worker processes hammer getAccessToken() on one shared session while a driver
// kills and restarts workers, restarts Redis (AOF) or terminates PostgreSQL backends, and the
// strict fake server drops some answers after rotating. Invariants are checked at the server
// and in the store. Used by test/chaos.processes.test.ts and `npm run chaos`.
import type { Redis } from 'ioredis';
import pg from 'pg';
import { SessionManager } from '../../src/index.js';
import { startChild } from '../helpers/child.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';
import { type PrivateRedis, startPrivateRedis } from '../helpers/private-redis.js';
import { DATABASE_URL, runId } from '../helpers/services.js';
import { openStore, type StoreConfig } from '../helpers/store-config.js';

export interface ChaosOptions {
  store: 'redis' | 'postgres';
  durationMs: number;
  workers?: number;
  /** Progress lines, for the long run by hand. */
  log?: (line: string) => void;
}

export interface ChaosReport {
  store: string;
  seconds: number;
  faults: { workerKills: number; redisRestarts: number; backendsTerminated: number; answersDropped: number };
  calls: number;
  served: number;
  typedErrors: Record<string, number>;
  refreshes: number;
  /** Refresh tokens sent again within the server's grace window (lost answers recovered). */
  graceReuses: number;
  violations: {
    /** A used refresh token sent again outside the grace window: the family was revoked. */
    reuseOutsideGrace: number;
    /** One refresh token in flight twice at once: two holders at the same time. */
    concurrentReuse: number;
    untypedErrors: string[];
    hangs: number;
    /** The stored session does not hold the newest tokens the server issued (a lost acknowledged write). */
    staleStore: number;
    /** Sessions that needed a new login for any reason but an answer lost beyond the grace window. */
    sessionsLost: number;
  };
  /** Sessions lost to an answer lost with no grace window left (no client can save those). */
  lostAnswersBeyondGrace: number;
}

const GRACE_MS = 30_000;

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {});
  const workers = options.workers ?? 4;
  const as = await startFakeAuthServer();
  as.accessTokenTtl = 1; // a renewal about every 0.7 s
  as.refreshGraceMs = GRACE_MS;
  as.dropRate = 0.05;
  as.latencyMs = 20;
  const admin = new pg.Pool({ connectionString: DATABASE_URL });
  let redis: PrivateRedis | undefined;
  let config: StoreConfig;
  const app = `${runId()}_chaos`;
  const table = runId();
  if (options.store === 'redis') {
    redis = await startPrivateRedis('aof');
    config = { kind: 'redis', url: redis.url, prefix: `${runId()}:` };
  } else {
    const sep = DATABASE_URL.includes('?') ? '&' : '?';
    config = { kind: 'postgres', connectionString: `${DATABASE_URL}${sep}application_name=${app}`, table };
  }
  const driverStore = openStore(
    options.store === 'postgres' ? { kind: 'postgres', connectionString: DATABASE_URL, table } : config,
  );
  const client = { clientId: as.clientId, clientSecret: as.clientSecret };
  const manager = new SessionManager({ store: driverStore, tokenEndpoint: as.tokenEndpoint, client });
  await manager.adopt('chaos', as.issue({ expiresIn: 1 }));
  let sessionsLost = 0;
  let lostBeyondGrace = 0;

  const workerConfig = JSON.stringify({
    store: config,
    tokenEndpoint: as.tokenEndpoint,
    client,
    sessionId: 'chaos',
    rotationGraceMs: GRACE_MS,
    hangMs: 30_000,
  });
  type Counts = {
    calls: number;
    ok: number;
    typed: Record<string, number>;
    untyped: string[];
    hangs: number;
    reauth: string[];
  };
  const finished: Counts[] = [];
  const lastCounts = (out: string): Counts | undefined => {
    const lines = out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    return lines.length ? (JSON.parse(lines[lines.length - 1] as string) as Counts) : undefined;
  };
  const spawnWorker = () => startChild('chaos-worker.ts', [workerConfig]);
  const running = Array.from({ length: workers }, spawnWorker);
  const faults = { workerKills: 0, redisRestarts: 0, backendsTerminated: 0, answersDropped: 0 };
  const deadline = Date.now() + options.durationMs;
  const started = Date.now();

  const killer = (async () => {
    while (Date.now() < deadline - 2_000) {
      await sleep(1_500 + Math.random() * 1_500);
      const i = Math.floor(Math.random() * running.length);
      const victim = running[i] as ReturnType<typeof spawnWorker>;
      victim.child.kill('SIGKILL');
      const result = await victim.done;
      const c = lastCounts(result.stdout);
      if (c) finished.push(c);
      faults.workerKills++;
      running[i] = spawnWorker();
    }
  })();
  const storeFaults = (async () => {
    while (Date.now() < deadline - 3_000) {
      if (redis) {
        await sleep(3_000 + Math.random() * 2_000);
        await redis.restart(300 + Math.random() * 2_000);
        faults.redisRestarts++;
      } else {
        await sleep(300 + Math.random() * 700);
        const r = await admin
          .query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app])
          .catch(() => undefined);
        faults.backendsTerminated += r?.rowCount ?? 0;
      }
    }
  })();
  // Watch the session: a reauth-required one is counted, classified and replaced by a new login.
  const watcher = (async () => {
    while (Date.now() < deadline) {
      await sleep(500);
      const session = await manager.get('chaos').catch(() => undefined);
      if (session?.status === 'reauth-required') {
        const reason = String(session.toJSON().reason);
        if (reason === 'renewal-interrupted') lostBeyondGrace++;
        else sessionsLost++;
        log(`session lost (${reason}); logging in again`);
        await manager.adopt('chaos', as.issue({ expiresIn: 1 })).catch(() => {});
      }
    }
  })();
  const progress = setInterval(() => {
    log(
      `${Math.round((Date.now() - started) / 1000)} s: ${as.counts.refresh} refreshes, ${faults.workerKills} kills, ` +
        `${faults.redisRestarts} Redis restarts, ${faults.backendsTerminated} backends terminated, ${as.counts.dropped} answers dropped`,
    );
  }, 5_000);
  await Promise.all([killer, storeFaults, watcher]);
  clearInterval(progress);
  log('faults stopped; stopping the workers');
  // Quiesce: stop the workers, let in-flight work settle, then check the store against the server.
  as.dropRate = 0;
  for (const w of running) w.child.kill('SIGTERM');
  for (const w of running) {
    const c = lastCounts((await w.done).stdout);
    if (c) finished.push(c);
  }
  faults.answersDropped = as.counts.dropped;
  log('workers stopped; checking the store against the server');
  let staleStore = 0;
  const final = await readFinal(manager);
  if (final === undefined || final.status !== 'active') sessionsLost++;
  else {
    const newest = as.newestRefreshToken(final.refreshToken as string);
    const undecided = final.renewing; // a worker killed mid-refresh: the next call resolves it
    if (!undecided && newest !== final.refreshToken) staleStore++;
    // The session still works: one more renewal, by a fresh process's manager.
    const session = await manager.get('chaos');
    await session?.getAccessToken({ forceRefresh: true }).catch(() => sessionsLost++);
  }
  log('checked');
  const sum = (f: (c: Counts) => number) => finished.reduce((n, c) => n + f(c), 0);
  const typedErrors: Record<string, number> = {};
  for (const c of finished) for (const [k, v] of Object.entries(c.typed)) typedErrors[k] = (typedErrors[k] ?? 0) + v;
  const report: ChaosReport = {
    store: options.store,
    seconds: Math.round((Date.now() - started) / 1000),
    faults,
    calls: sum((c) => c.calls),
    served: sum((c) => c.ok),
    typedErrors,
    refreshes: as.counts.refresh,
    graceReuses: as.counts.graceReuse,
    violations: {
      reuseOutsideGrace: as.counts.reuseDetected,
      concurrentReuse: as.counts.concurrentReuse,
      untypedErrors: finished.flatMap((c) => c.untyped),
      hangs: sum((c) => c.hangs),
      staleStore,
      sessionsLost,
    },
    lostAnswersBeyondGrace: lostBeyondGrace,
  };
  await driverStore.close();
  if (options.store === 'postgres') await admin.query(`DROP TABLE IF EXISTS "${table}", "${table}_locks"`);
  await admin.end();
  await redis?.stop();
  await as.close();
  return report;
}

/** The stored session as plain facts (tokens included: this is a test's own view). */
async function readFinal(manager: SessionManager) {
  const entry = await manager.store.get('tokenkeeper:s:chaos');
  if (entry === undefined) return undefined;
  const v = entry.value as { status?: string; tokens?: { refreshToken?: string }; renewing?: unknown };
  return { status: v.status, refreshToken: v.tokens?.refreshToken, renewing: v.renewing };
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

export type { FakeAuthServer, Redis };
