import { randomUUID } from 'node:crypto';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A key prefix, schema or table suffix no other test run uses. */
export const runId = () => `tk_${randomUUID().replace(/-/g, '').slice(0, 16)}`;

/** Deletes every Redis key under the given prefixes (what a test run wrote), by SCAN, not KEYS. */
export async function deleteRedisPrefixes(prefixes: string[]): Promise<void> {
  const { Redis } = await import('ioredis');
  const { escapeGlob } = await import('../../src/exports/redis.js');
  const client = new Redis(REDIS_URL);
  try {
    for (const prefix of prefixes) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await client.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    await client.quit();
  }
}
