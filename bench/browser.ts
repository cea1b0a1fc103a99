import { fileURLToPath } from 'node:url';
import { launchChromium, openTab, startPageServer } from '../test/helpers/browser.js';
import { printRows, type Row } from './harness.js';

/** The browser stores in Chromium vs the raw IndexedDB, localStorage and Web Locks calls. */
export async function benchBrowser(): Promise<void> {
  const server = await startPageServer({
    'bench-browser': fileURLToPath(new URL('./page/browser.ts', import.meta.url)),
  });
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const page = await openTab(context, server.origin);
    await page.addScriptTag({ url: '/bench-browser.js', type: 'module' });
    await page.waitForFunction(() => 'browserBench' in globalThis);
    const rows = await page.evaluate(() =>
      (globalThis as unknown as { browserBench: { run(): Promise<Row[]> } }).browserBench.run(),
    );
    printRows('browser stores in headless Chromium vs the raw browser APIs', rows);
  } finally {
    await browser.close();
    await server.close();
  }
}
