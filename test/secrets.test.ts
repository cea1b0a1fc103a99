import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../src/exports/postgres.js';
import { redisStore } from '../src/exports/redis.js';
import { rejection } from './helpers/errors.js';
import { DATABASE_URL, REDIS_URL, runId } from './helpers/services.js';

// Drivers attach what failed to their errors (ioredis: the command's arguments; pg: the
// failing row). A store's error must never carry them, even deep in `cause`.
const secret = `rt-${runId()}-very-secret`;
const admin = new Redis(REDIS_URL);
const user = `tk_noeval_${runId()}`;
afterAll(async () => {
  await admin.acl('DELUSER', user);
  await admin.quit();
});

describe('no secret in store errors', () => {
  it('Redis: a refused script call does not carry the record in the error', async () => {
    await admin.acl('SETUSER', user, 'on', '>pw', '~*', '+@all', '-evalsha', '-eval');
    const client = new Redis(REDIS_URL, { username: user, password: 'pw' });
    const store = redisStore({ client, prefix: `${runId()}:` });
    const err = await rejection(store.set('k', { refreshToken: secret }));
    expect(err.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(err.message).toMatch(/NOPERM|permission/i);
    expect(inspect(err, { depth: 20, showHidden: true })).not.toContain(secret);
    expect(JSON.stringify(err)).not.toContain(secret);
    await client.quit();
  });

  it('PostgreSQL: a failing write does not carry the row in the error', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    const table = runId();
    const store = postgresStore({ pool }, { table });
    await store.get('warm');
    // Make every write fail with a constraint whose error detail quotes the row.
    await pool.query(`ALTER TABLE "${table}" ADD CONSTRAINT short CHECK (length(value) < 10)`);
    const err = await rejection(store.set('k', { refreshToken: secret }));
    expect(err.code).toBe('TOKENKEEPER_STORE_UNAVAILABLE');
    expect(inspect(err, { depth: 20, showHidden: true })).not.toContain(secret);
    await pool.query(`DROP TABLE "${table}", "${table}_locks"`);
    await pool.end();
  });
});
