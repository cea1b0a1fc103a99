import { randomUUID } from 'node:crypto';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A key prefix, schema or table suffix no other test run uses. */
export const runId = () => `tk_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
