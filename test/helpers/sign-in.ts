import type { BrowserContext, Page } from 'playwright-core';

/** Nothing a page loads leaves 127.0.0.1 (oidc-provider's pages import a web font). */
export async function offline(context: BrowserContext): Promise<void> {
  await context.route(
    (url) => url.hostname !== '127.0.0.1',
    (route) => route.abort(),
  );
}

/**
 * Goes through oidc-provider's pages from `url` (a user code, then login and consent, as needed)
 * until `done` says the flow has left them. Throws if it never does.
 */
export async function signIn(
  page: Page,
  url: string | undefined,
  done: () => Promise<boolean> | boolean,
  fill: Record<string, string> = {},
): Promise<void> {
  if (url !== undefined) await page.goto(url);
  const fields: Record<string, string> = { login: 'alice', password: 'any password', ...fill };
  for (let step = 0; step < 8 && !(await done()); step++) {
    for (const [name, value] of Object.entries(fields)) {
      const field = page.locator(`input[name=${name}]:visible`);
      if ((await field.count()) > 0) await field.fill(value);
    }
    await Promise.all([page.waitForNavigation(), page.locator('button[type=submit]').first().click()]);
  }
  if (!(await done())) throw new Error(`the sign-in did not finish; the browser is at ${page.url()}`);
}
