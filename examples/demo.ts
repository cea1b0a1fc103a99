// `npm start`: tokenkeeper end to end, against a real authorization server on 127.0.0.1.
//
// The demo runs itself as worker processes too (`--worker`): a "second run" that restores the
// session without logging in, and the processes of the refresh storm.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileStore } from '../src/exports/file.js';
import { loginWithBrowser } from '../src/exports/loopback.js';
import { type Session, SessionManager, type SessionManagerOptions, type StoreRecord } from '../src/index.js';
import { type RealAuthServer, startRealAuthServer } from './auth-server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const demoDir = join(root, '.tokenkeeper-demo'); // git-ignored
const sessionsDir = join(demoDir, 'sessions');
const SESSION = 'alice';
const PROCESSES = 8;
const CALLERS = 200;

interface WorkerConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
}

function managerOptions(c: WorkerConfig): SessionManagerOptions {
  return {
    store: fileStore({ path: sessionsDir }),
    issuer: c.issuer,
    client: { clientId: c.clientId, clientSecret: c.clientSecret },
    namespace: 'demo',
  };
}

async function worker(mode: string, config: WorkerConfig): Promise<void> {
  const manager = new SessionManager(managerOptions(config));
  const session = await manager.get(SESSION);
  if (!session) throw new Error('no stored session');
  if (mode === 'storm') {
    process.stdout.write('ready\n');
    const go = join(demoDir, 'go');
    for (let i = 0; i < 3000 && !existsSync(go); i++) await new Promise((r) => setTimeout(r, 5));
  }
  const callers = mode === 'storm' ? CALLERS : 1;
  const tokens = await Promise.all(Array.from({ length: callers }, () => session.getAccessToken()));
  process.stdout.write(`${JSON.stringify({ distinct: [...new Set(tokens)] })}\n`);
}

function startWorker(mode: string, config: WorkerConfig) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', mode, JSON.stringify(config)],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
  });
  const done = new Promise<string[]>((resolve, reject) => {
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`demo worker exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop() as string).distinct);
    });
  });
  return { ready, done };
}

const step = (n: number, title: string, text: string) => console.log(`${n}. ${title.padEnd(24, ' ')} ${text}`);

async function main(): Promise<void> {
  const server = await startRealAuthServer();
  const config: WorkerConfig = { issuer: server.issuer, clientId: server.clientId, clientSecret: server.clientSecret };
  mkdirSync(demoDir, { recursive: true, mode: 0o700 });
  rmSync(join(demoDir, 'go'), { force: true });
  const manager = new SessionManager(managerOptions(config));

  console.log('tokenkeeper demo\n');
  console.log(`   authorization server  oidc-provider at ${server.issuer} (refresh-token rotation on)`);
  console.log(`   session store         ${relative(root, sessionsDir)}/ (file store: 0600 files, atomic writes)\n`);

  // A session left by an interrupted earlier run belongs to an authorization server that is gone.
  const leftover = await manager.clear();
  if (leftover > 0) console.log(`   (removed ${leftover} session(s) left by an interrupted earlier run)\n`);

  // 1. Log in through the server's own login page, as a CLI would (PKCE, loopback redirect).
  const { session, how } = await logIn(manager, server);
  step(1, 'Log in once', `logged in as ${JSON.stringify(session.id)} ${how}; stored ${session.tokens}`);

  // 2. A second run: a new process finds the session in the store, with no login.
  const before = { ...server.counts };
  const restored = await startWorker('restore', config).done;
  const same = restored[0] === (await session.getAccessToken());
  step(
    2,
    'A second run',
    `a new process restored the session from the store: ${server.counts.refresh_token - before.refresh_token} token requests, ${
      same ? 'same access token' : 'a different token?!'
    }`,
  );

  // 3. Force expiry: rewrite the stored access token's expiry into the past.
  const key = `demo:s:${SESSION}`;
  const entry = await manager.store.get(key);
  const value = structuredClone(entry?.value) as StoreRecord & { tokens: { expiresAt: number } };
  value.tokens.expiresAt = Date.now() - 1000;
  await manager.store.set(key, value);
  step(3, 'Force expiry', 'the stored access token now expired an instant ago');

  // 4. The storm: every process holds the expired session and calls getAccessToken() at once.
  const stormStart = { ...server.counts };
  const started = Date.now();
  const workers = Array.from({ length: PROCESSES }, () => startWorker('storm', config));
  await Promise.all(workers.map((w) => w.ready));
  writeFileSync(join(demoDir, 'go'), '');
  const distinct = new Set((await Promise.all(workers.map((w) => w.done))).flat());
  rmSync(join(demoDir, 'go'), { force: true });
  const refreshes = server.counts.refresh_token - stormStart.refresh_token;
  const errors = server.counts.errors - stormStart.errors;
  step(
    4,
    'Refresh storm',
    `${PROCESSES} processes x ${CALLERS} getAccessToken() calls: the server saw ${refreshes} refresh request${
      refreshes === 1 ? '' : 's'
    } and ${errors} errors; all ${PROCESSES * CALLERS} callers got ${distinct.size === 1 ? 'the same new token' : `${distinct.size} tokens`} (${
      Date.now() - started
    } ms)`,
  );

  // 5. Log out: revoke at the server, then delete from the store.
  const latest = await manager.get(SESSION);
  const { revoked } = (await latest?.logout()) ?? { revoked: false };
  step(
    5,
    'Log out',
    `${revoked ? 'refresh and access tokens revoked at the server' : 'not revoked'}; session deleted from the store`,
  );

  await server.close();
  if (refreshes !== 1 || errors !== 0 || distinct.size !== 1 || !same || !revoked) {
    console.error('\nThe demo did not behave as documented.');
    process.exitCode = 1;
  }
}

/**
 * Logs in with `loginWithBrowser`, a headless Chromium playing the user on the login and consent
 * pages. Without Chromium (`apt-get install chromium`), the demo mints the refresh token such a
 * login produces and logs in with it.
 */
async function logIn(manager: SessionManager, server: RealAuthServer): Promise<{ session: Session; how: string }> {
  const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromiumPath)) {
    const refreshToken = await server.mintRefreshToken(SESSION);
    const session = await manager.login({ grant: 'refresh_token', refreshToken }, { sessionId: SESSION });
    return { session, how: '(no Chromium here: with a minted refresh token)' };
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage();
    await page.route(
      (url) => url.hostname !== '127.0.0.1',
      (route) => route.abort(),
    );
    const session = await loginWithBrowser(manager, {
      scope: 'openid offline_access api:read',
      prompt: 'consent', // oidc-provider issues a refresh token (offline_access) only with consent
      open: async (url) => {
        const done = new URL(url).searchParams.get('redirect_uri') as string;
        await page.goto(url);
        for (let step = 0; step < 6 && !page.url().startsWith(done); step++) {
          if ((await page.locator('input[name=login]').count()) > 0) {
            await page.fill('input[name=login]', SESSION);
            await page.fill('input[name=password]', 'any password');
          }
          await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').first().click()]);
        }
      },
    });
    return { session, how: 'through the login page (PKCE, headless Chromium as the user)' };
  } finally {
    await browser.close();
  }
}

const [flag, mode, configJson] = process.argv.slice(2);
if (flag === '--worker') {
  worker(mode as string, JSON.parse(configJson as string)).catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
