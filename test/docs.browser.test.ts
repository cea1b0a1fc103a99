import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './helpers/browser.js';

// The documentation site as a reader meets it: every page opened in Chromium, every link
// followed. A missing page, a link to a heading that is not there, or a page that throws fails.

const site = fileURLToPath(new URL('../docs/.vitepress/dist', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};
let server: Server;
let origin: string;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(join(site, 'index.html')))
    throw new Error('docs/.vitepress/dist is missing: run npm run docs first.');
  server = createServer((req, res) => {
    let path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (path.endsWith('/')) path += 'index.html';
    const file = join(site, path);
    if (!file.startsWith(site) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 30_000);
afterAll(async () => {
  await browser?.close();
  server?.close();
});

describe('the documentation site', () => {
  it('opens every page without an error, and every link leads somewhere that exists', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400) errors.push(`${page.url()}: ${r.status()} for ${r.url()}`);
    });
    page.on('console', (m) => {
      // A failed load is reported above, with its address.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
        errors.push(`${page.url()}: console: ${m.text()}`);
      }
    });
    const queue = ['/'];
    const seen = new Set(queue);
    const anchors: { from: string; page: string; id: string }[] = [];
    const external = new Set<string>();
    /** The element ids of each page crawled, as its scripts left them: where links to headings land. */
    const ids = new Map<string, Set<string>>();
    let opened = 0;
    while (queue.length > 0) {
      const path = queue.shift() as string;
      const response = await page.goto(`${origin}${path}`);
      expect(response?.status(), path).toBe(200);
      opened++;
      // The API reference (TypeDoc) is checked page by page but not crawled link by link.
      if (path.startsWith('/api/')) continue;
      ids.set(path, new Set(await page.$$eval('[id]', (els) => els.map((e) => e.id))));
      const links = await page.$$eval('a[href]', (as) => as.map((a) => (a as HTMLAnchorElement).href));
      for (const href of links) {
        const url = new URL(href);
        if (url.origin !== origin) {
          external.add(url.origin);
          continue;
        }
        const target = url.pathname;
        if (url.hash.length > 1) anchors.push({ from: path, page: target, id: decodeURIComponent(url.hash.slice(1)) });
        if (!seen.has(target) && (target.endsWith('.html') || target.endsWith('/'))) {
          seen.add(target);
          queue.push(target);
        }
      }
    }
    expect(opened).toBeGreaterThanOrEqual(15);
    expect(seen.has('/api/index.html')).toBe(true);
    // Every link to a heading finds it on its page.
    const missing: string[] = [];
    for (const { from, page: target, id } of anchors) {
      if (target.startsWith('/api/')) continue;
      if (!ids.get(target)?.has(id)) missing.push(`${from} -> ${target}#${id}`);
    }
    expect(missing).toEqual([]);
    expect(errors).toEqual([]);
  }, 120_000);
});
