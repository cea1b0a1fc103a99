// A web app whose users sign in with an OAuth provider, and whose routes call an API with each
// user's token: Express, the Redis store, and node:cluster workers. Any worker serves any
// request; each user's token is refreshed once however many workers need it at the same moment.
//
//   ISSUER=https://login.example.com CLIENT_ID=... CLIENT_SECRET=... COOKIE_KEY=<32+ chars> \
//   PORT=3000 REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/web-app.ts
//
// Register http://127.0.0.1:<PORT>/auth/callback as a redirect URI of the client. The API it
// calls is the provider's userinfo endpoint (API_URL to call another one).
import cluster from 'node:cluster';
import express from 'express';
import { type ExpressRequest, expressAuth } from '../src/exports/express.js';
import { redisStore } from '../src/exports/redis.js';
import { webAuth } from '../src/exports/web.js';
import { SessionManager } from '../src/index.js';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`${name} is not set: see the top of examples/web-app.ts`);
    process.exit(2);
  }
  return value;
};
const port = Number(env('PORT', '3000'));
const workers = Number(env('WORKERS', '4'));

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`web-app: ${workers} workers on http://127.0.0.1:${port}`);
  });
  cluster.on('exit', (worker, code) => {
    if (code !== 0 && !shuttingDown) console.error(`web-app: worker ${worker.id} exited with ${code}`);
  });
  let shuttingDown = false;
  process.on('SIGTERM', () => {
    shuttingDown = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    process.exit(0);
  });
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const issuer = env('ISSUER');
  const manager = new SessionManager({
    store: redisStore({ url: env('REDIS_URL', 'redis://127.0.0.1:6379'), namespace: env('NAMESPACE', 'web_app') }),
    issuer,
    client: { clientId: env('CLIENT_ID'), clientSecret: env('CLIENT_SECRET') },
  });
  const auth = webAuth(manager, {
    redirectUri: `http://127.0.0.1:${port}/auth/callback`,
    scope: 'openid offline_access api:read',
    prompt: 'consent', // many servers issue a refresh token only with consent
    cookie: { keys: env('COOKIE_KEY').split(',') },
  });
  const apiUrl = process.env.API_URL ?? `${issuer}/me`;
  const worker = cluster.worker?.id;

  const app = express();
  app.use(expressAuth(auth)); // GET /auth/login, GET /auth/callback, POST /auth/logout; req.tokenkeeper

  app.get('/', (req: ExpressRequest, res) => {
    const session = req.tokenkeeper;
    res.type('html').send(
      session === undefined
        ? '<h1>Signed out</h1><a id="login" href="/auth/login?returnTo=/">Sign in</a>'
        : `<h1>Signed in as <span id="user">${html(String(session.claims?.sub ?? session.id))}</span></h1>
           <p><a href="/api/me">Call the API</a></p>
           <form method="post" action="/auth/logout"><button id="logout">Sign out</button></form>`,
    );
  });

  app.get('/api/me', async (req: ExpressRequest, res) => {
    const session = req.tokenkeeper;
    if (session === undefined) return void res.status(401).json({ error: 'sign in first' });
    const response = await session.fetch(apiUrl); // a valid token; renewed once across all workers
    res.status(response.ok ? 200 : 502).json({ worker, status: response.status, user: await response.json() });
  });

  app.listen(port, '127.0.0.1');
}

function html(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
