// Lease.predecessor: how a lock became free, on the stores that can tell. The session engine
// resends a marked refresh at once only after a `released` or `gone` predecessor; an `expired`
// one may be a live holder whose request is still at the server.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { fileStore } from '../src/exports/file.js';
import { postgresStore } from '../src/exports/postgres.js';
import { redisStore } from '../src/exports/redis.js';
import { sqliteStore } from '../src/exports/sqlite.js';
import { memoryStore, type Store } from '../src/index.js';
import { DATABASE_URL, deleteRedisPrefixes, REDIS_URL, runId } from './helpers/services.js';

const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
const ns = runId();
afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS "${ns}_records", "${ns}_records_locks"`);
  await pool.end();
  await deleteRedisPrefixes([`${ns}:`]);
});

const dir = () => mkdtempSync(join(tmpdir(), 'tk-pred-'));
const stores: [string, () => Store, boolean][] = [
  ['memory', () => memoryStore(), true],
  ['file', () => fileStore({ path: join(dir(), 'store') }), true],
  ['SQLite', () => sqliteStore({ path: join(dir(), 'tokens.db') }), true],
  ['PostgreSQL', () => postgresStore({ pool, namespace: ns }), true],
  ['Redis (cannot tell)', () => redisStore({ url: REDIS_URL, namespace: ns }), false],
];

describe('Lease.predecessor', () => {
  for (const [label, open, tells] of stores) {
    it(`${label}: released after a release, expired after a lease ran out`, async () => {
      const store = open();
      try {
        await (await store.lock('p')).release();
        const afterRelease = await store.lock('p', { leaseMs: 100 });
        await new Promise((r) => setTimeout(r, 150)); // its lease runs out, unreleased
        const afterExpiry = await store.lock('p', { waitMs: 2_000 });
        expect(afterRelease.predecessor).toBe(tells ? 'released' : undefined);
        expect(afterExpiry.predecessor).toBe(tells ? 'expired' : undefined);
        await afterExpiry.release();
      } finally {
        await store.close();
      }
    });
  }
});
