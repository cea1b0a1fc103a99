import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import type { HeldLock as StoreLock } from '../store/kit/liveness.js';
import { type Common, listRows, withStore } from './commands.js';
import { UsageError, withKeys } from './stores.js';

// `tokenkeeper doctor`: what is wrong with a store and its server, as checks a person reads.

export interface Check {
  check: string;
  ok: boolean;
  detail: string;
}

/** Health checks of a store and, with --issuer, of its authorization server. */
export async function doctor(c: Common): Promise<Check[]> {
  const checks: Check[] = [];
  const url = new URL(c.store);
  if (url.protocol === 'file:') checks.push(await folderCheck(url));
  try {
    await withStore(c, async (_store, raw) => {
      const key = `${c.namespace}:doctor:${randomBytes(6).toString('hex')}`;
      const t0 = performance.now();
      await raw.set(key, { probe: true }, { ttlMs: 60_000 });
      const t1 = performance.now();
      await raw.get(key);
      const t2 = performance.now();
      await raw.delete(key);
      const t3 = performance.now();
      const ms = (a: number, b: number) => `${(b - a).toFixed(1)} ms`;
      checks.push({
        check: 'store',
        ok: true,
        detail: `${raw.name}: write ${ms(t0, t1)}, read ${ms(t1, t2)}, delete ${ms(t2, t3)}`,
      });
      let sessions = 0;
      let renewing = 0;
      let stale = 0;
      let unreadable = 0;
      for await (const row of listRows(c, withKeys(raw, c.encryption))) {
        sessions++;
        if (row.problem !== undefined) unreadable++;
        if (row.renewing !== undefined) {
          renewing++;
          const since = Date.parse(row.renewing.slice(6, 30));
          if (Number.isFinite(since) && Date.now() - since > 60_000) stale++;
        }
      }
      checks.push({
        check: 'sessions',
        ok: stale === 0 && unreadable === 0,
        detail: `${sessions} sessions, ${renewing} renewing${stale ? `, ${stale} stuck for over a minute (a renewal whose answer was lost)` : ''}${
          unreadable ? `, ${unreadable} unreadable (give the right --key, --issuer and --client-id)` : ''
        }`,
      });
    });
  } catch (error) {
    if (error instanceof UsageError) throw error; // a wrong --store is bad usage (exit 2), not an outage
    checks.push({ check: 'store', ok: false, detail: (error as Error).message });
  }
  const locks = await heldLocks(url).catch((error: unknown) => ({ error: (error as Error).message }));
  if (locks === undefined) {
    checks.push({
      check: 'locks',
      ok: true,
      detail: 'this store does not list its locks (its leases end by themselves)',
    });
  } else if ('error' in locks) {
    checks.push({ check: 'locks', ok: false, detail: locks.error });
  } else {
    const junk = url.protocol === 'file:' ? await lockJunk(url).catch(() => []) : [];
    const stale = locks.filter((l) => l.expiresAt <= Date.now());
    const shown = locks
      .slice(0, 5)
      .map(
        (l) =>
          `${l.key} (${l.pid === undefined ? 'holder unknown' : `pid ${l.pid}${l.host ? ` on ${l.host}` : ''}`}, ${
            l.expiresAt <= Date.now() ? 'STALE: lease ended' : 'until'
          } ${new Date(l.expiresAt).toISOString()})`,
      );
    const junkShown = junk
      .slice(0, 5)
      .map((j) => `${j.name} (${j.what}, ${Math.round(j.ageMs / 1000)} s old)`)
      .join('; ');
    checks.push({
      check: 'locks',
      ok: stale.length === 0 && junk.length === 0,
      detail:
        (locks.length === 0
          ? 'none held'
          : `${locks.length} held${stale.length ? `, ${stale.length} stale (a holder that died; the next taker breaks it)` : ''}: ${shown.join('; ')}${locks.length > 5 ? '; ...' : ''}`) +
        (junk.length === 0
          ? ''
          : `; ${junk.length} junk file${junk.length === 1 ? '' : 's'} at lock paths (no lock record; the next taker clears each once older than a lease): ${junkShown}${junk.length > 5 ? '; ...' : ''}`),
    });
  }
  if (c.issuer !== undefined) checks.push(...(await serverChecks(c.issuer)));
  return checks;
}

/**
 * The permissions of the folder the file store of `url` uses (the default folder for `file:`, and
 * `apps/<namespace>` in it with a namespace), as the store itself judges them. Advice to chmod is
 * given only for a folder that holds nothing but the store's own files: any other folder (a home,
 * `/tmp`, a project) is not the store's to change, so the advice is to give the store its own.
 */
async function folderCheck(url: URL): Promise<Check> {
  const { storeDir } = await import('../store/file/index.js');
  const path = decodeURIComponent(url.pathname);
  const namespace = url.searchParams.get('namespace') ?? undefined;
  const dir = storeDir({ ...(path === '' || path === '/' ? {} : { path }), namespace }, 'doctor');
  const check = 'file permissions';
  let s: Stats;
  try {
    s = await stat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { check, ok: true, detail: `${dir} does not exist yet (the store makes it, mode 0700, on first use)` };
    }
    return { check, ok: false, detail: `${dir}: ${(error as Error).message}` };
  }
  const mode = (s.mode & 0o777).toString(8).padStart(4, '0');
  const uid = process.getuid?.();
  const foreign = uid !== undefined && s.uid !== uid;
  if (process.platform === 'win32' || (!foreign && (s.mode & 0o077) === 0)) {
    return { check, ok: true, detail: `${dir} is ${mode}` };
  }
  const problem = foreign ? `is owned by another user (uid ${s.uid})` : `is ${mode}: other users can read it`;
  const entries = await readdir(dir).catch(() => [] as string[]);
  const storeOnly = entries.every((e) => /^(.+\.(json|lock)|\.tmp-[0-9a-f]+|apps)$/.test(e));
  const advice =
    !foreign && storeOnly
      ? `chmod 700 ${dir}`
      : 'the store refuses it: give the store a folder of its own (a path that does not exist yet, which it makes 0700)';
  return { check, ok: false, detail: `${dir} ${problem}; ${advice}` };
}

/** A lock as the doctor shows it: when its lease ends, by this machine's clock. */
type HeldLock = Omit<StoreLock, 'remainingMs'> & { expiresAt: number };

/** The locks a store holds now, and who holds them where the store records it; `undefined` for stores that cannot tell. */
async function heldLocks(url: URL): Promise<HeldLock[] | undefined> {
  const namespace = url.searchParams.get('namespace') ?? undefined;
  const server = new URL(url);
  server.searchParams.delete('namespace');
  const path = decodeURIComponent(url.pathname);
  let locks: StoreLock[];
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    locks = await (await import('../store/redis/index.js')).redisLocks(server.href, { namespace });
  } else if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') {
    locks = await (await import('../store/postgres/index.js')).postgresLocks(server.href, { namespace });
  } else if (url.protocol === 'sqlite:') {
    locks = (await import('../store/sqlite/index.js')).sqliteLocks(path, { namespace });
  } else if (url.protocol === 'file:') {
    const { fileLocks } = await import('../store/file/index.js');
    locks = await fileLocks({ ...(path === '' || path === '/' ? {} : { path }), namespace });
  } else {
    return undefined;
  }
  return locks.map(({ remainingMs, ...l }) => ({ ...l, expiresAt: Date.now() + remainingMs }));
}

/** Junk at the lock paths of the file store of `url` (its folder as the store computes it). */
async function lockJunk(url: URL) {
  const { fileLockJunk } = await import('../store/file/index.js');
  const path = decodeURIComponent(url.pathname);
  const namespace = url.searchParams.get('namespace') ?? undefined;
  return fileLockJunk({ ...(path === '' || path === '/' ? {} : { path }), namespace });
}

async function serverChecks(issuer: string): Promise<Check[]> {
  const out: Check[] = [];
  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    const url = new URL(issuer.replace(/\/$/, '') + path);
    try {
      const sent = Date.now();
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const received = Date.now();
      if (!response.ok) continue;
      const meta = (await response.json()) as Record<string, unknown>;
      out.push({
        check: 'discovery',
        ok: true,
        detail: `${url.origin}${url.pathname}: token endpoint ${String(meta.token_endpoint)}`,
      });
      out.push({
        check: 'revocation',
        ok: typeof meta.revocation_endpoint === 'string',
        detail:
          typeof meta.revocation_endpoint === 'string'
            ? `supported (${meta.revocation_endpoint})`
            : 'the server has no revocation endpoint: logout only deletes sessions here',
      });
      const date = Date.parse(response.headers.get('date') ?? '');
      if (Number.isFinite(date)) {
        // The Date header has a resolution of a second: skew within 2 s is noise.
        const skew = date - (sent + received) / 2;
        out.push({
          check: 'clock skew',
          ok: Math.abs(skew) < 30_000,
          detail: `${(skew / 1000).toFixed(1)} s against the server${Math.abs(skew) < 30_000 ? '' : ': tokens may look expired or fresh too early; fix the clock (NTP)'}`,
        });
      }
      return out;
    } catch (error) {
      out.push({ check: 'discovery', ok: false, detail: `${url.origin}${url.pathname}: ${(error as Error).message}` });
      return out;
    }
  }
  out.push({ check: 'discovery', ok: false, detail: `${issuer} publishes no discovery document` });
  return out;
}
