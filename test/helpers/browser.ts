import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, type BrowserContext, chromium, type Frame, type Page } from 'playwright-core';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Debian's Chromium, headless, with nothing that reaches for the internet. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH).`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface PageServer {
  /** `http://127.0.0.1:<port>`: a secure context, as localhost is. */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Serves the test pages on 127.0.0.1: `/` loads the page scripts; `/frame.html` is the same page
 * for a sandboxed frame (storage blocked); `/tokenkeeper.js` is the shipped browser build;
 * `/stores.js` and `/tabs.js` are the page sides of the tests, bundled from source.
 */
export async function startPageServer(extraEntries: Record<string, string> = {}): Promise<PageServer> {
  const buildFile = `${root}/dist/browser/tokenkeeper.js`;
  if (!existsSync(buildFile)) throw new Error('dist/browser/tokenkeeper.js is missing: run npm run build first.');
  const bundled = await build({
    entryPoints: {
      stores: `${root}/test/browser/page/stores.ts`,
      tabs: `${root}/test/browser/page/tabs.ts`,
      login: `${root}/test/browser/page/login.ts`,
      ...extraEntries,
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: '/pages',
    write: false,
    logLevel: 'error',
  });
  const files = new Map<string, string>([
    [
      '/',
      '<!doctype html><meta charset="utf-8"><title>tokenkeeper</title>' +
        '<script type="module" src="/stores.js"></script><script type="module" src="/tabs.js"></script>',
    ],
    ['/frame.html', '<!doctype html><meta charset="utf-8"><script type="module" src="/stores.js"></script>'],
    [
      '/sandboxed.html',
      '<!doctype html><meta charset="utf-8"><iframe name="blocked" sandbox="allow-scripts" src="/frame.html"></iframe>',
    ],
    ['/spa.html', '<!doctype html><meta charset="utf-8"><script type="module" src="/login.js"></script>'],
    ['/tokenkeeper.js', readFileSync(buildFile, 'utf8')],
  ]);
  for (const file of bundled.outputFiles) files.set(file.path.replace('/pages', ''), file.text);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname; // a query (a login callback's) is the page's business
    const body = files.get(path);
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    const type = path.endsWith('.js') ? 'text/javascript' : 'text/html';
    // A sandboxed frame has an opaque origin: its module scripts load only with CORS.
    res
      .writeHead(200, {
        'content-type': `${type}; charset=utf-8`,
        'cache-control': 'no-store',
        'access-control-allow-origin': '*',
      })
      .end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A new tab of `context` with the test page loaded and its scripts ready. */
export async function openTab(context: BrowserContext, origin: string, path = '/'): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await page.goto(`${origin}${path}`);
  if (path === '/') await page.waitForFunction(() => 'tabs' in globalThis && 'storesPage' in globalThis);
  return page;
}

type PageObject = 'storesPage' | 'tabs';

/** Calls `globalThis[object][fn](...args)` in the page (or frame) and returns what it resolves to. */
export function callPage<T>(target: Page | Frame, object: PageObject, fn: string, ...args: unknown[]): Promise<T> {
  return target.evaluate(
    ([o, f, a]) => {
      const api = (globalThis as unknown as Record<string, Record<string, (...x: unknown[]) => unknown>>)[o];
      return api?.[f]?.(...a) as T;
    },
    [object, fn, args] as [PageObject, string, unknown[]],
  );
}
