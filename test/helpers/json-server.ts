import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Exchange {
  req: IncomingMessage;
  url: URL;
  /** The request body, read in full. */
  body: string;
  json(status: number, data: unknown): void;
}

/**
 * An HTTP server on 127.0.0.1 for the fakes of third-party APIs: reads each body, hands the
 * exchange to `handle`, and answers 500 with the message if the handler throws.
 */
export async function startJsonServer(handle: (x: Exchange) => unknown) {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', async () => {
      const json = (status: number, data: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(data));
      };
      try {
        await handle({ req, url: new URL(req.url ?? '/', 'http://127.0.0.1'), body, json });
      } catch (error) {
        json(500, { error: String(error) });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
