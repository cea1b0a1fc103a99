// A command-line app's login, as users of tokenkeeper write it: the system browser with a
// loopback redirect (RFC 8252), or the device flow (RFC 8628) on a machine without a browser.
// The session lands in the file store, so the next run starts signed in.
//
//   npx tsx examples/cli-login.ts --issuer https://login.example.com --client-id my-cli [--device]
import { parseArgs } from 'node:util';
import { fileStore } from '../src/exports/file.js';
import { loginWithBrowser } from '../src/exports/loopback.js';
import { SessionManager } from '../src/index.js';

const { values } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    scope: { type: 'string', default: 'openid offline_access' },
    device: { type: 'boolean', default: false },
  },
});
if (!values.issuer || !values['client-id']) {
  console.error('usage: cli-login.ts --issuer URL --client-id ID [--scope S] [--device]');
  process.exit(2);
}

const manager = new SessionManager({
  store: fileStore({ namespace: 'cli-login-example' }),
  issuer: values.issuer,
  client: { clientId: values['client-id'] }, // a public client: no secret on users' machines
});

const stored = (await manager.get('me').catch(() => undefined)) ?? undefined;
const session =
  stored?.status === 'active'
    ? stored
    : values.device
      ? await manager.login(
          {
            grant: 'device_code',
            scope: values.scope,
            onPrompt: ({ userCode, verificationUri }) =>
              console.error(`To sign in, open ${verificationUri} and enter the code ${userCode}`),
          },
          { sessionId: 'me', replace: true },
        )
      : await loginWithBrowser(manager, {
          scope: values.scope,
          sessionId: 'me',
          onUrl: (url) => console.error(`Opening your browser to sign in. If it does not open, visit:\n${url}`),
        });

console.error(`Signed in as ${String(session.claims?.sub ?? session.id)}; the access token is ready.`);
await manager.close();
