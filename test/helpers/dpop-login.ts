import type { Browser } from 'playwright-core';
import type { Session, SessionManager } from '../../src/index.js';
import { loginWithBrowser } from '../../src/session/login/loopback.js';
import { offline, signIn } from './sign-in.js';

/** A 32-byte encryption key (base64) for the stores that keep DPoP keys in their records. */
export const DPOP_TEST_KEY = Buffer.alloc(32, 7).toString('base64');

/**
 * Logs `manager` in as `user` through oidc-provider's login page (loopback redirect, Chromium as
 * the user): with `dpop` on, the tokens come back bound to the session's new key.
 */
export async function browserLogin(
  browser: Browser,
  manager: SessionManager,
  user = 'alice',
  sessionId?: string,
): Promise<Session> {
  const context = await browser.newContext();
  try {
    await offline(context);
    const page = await context.newPage();
    return await loginWithBrowser(manager, {
      scope: 'openid offline_access api:read',
      prompt: 'consent',
      ...(sessionId === undefined ? {} : { sessionId }),
      open: async (url) => {
        const callback = new URL(url).searchParams.get('redirect_uri') as string;
        await signIn(page, url, () => page.url().startsWith(callback), { login: user });
      },
    });
  } finally {
    await context.close();
  }
}
