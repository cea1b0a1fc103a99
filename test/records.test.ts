// Every session record format version ever written has a fixture here, and this reader must read
// it (or, for a newer format, refuse it as too new): see the policy in src/session/record.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { memoryStore, SessionManager, type StoreRecord } from '../src/index.js';
import { decodeSession } from '../src/session/record.js';
import { rejection } from './helpers/errors.js';

const dir = new URL('./fixtures/records/', import.meta.url);
const fixture = (name: string) =>
  (JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as { record: StoreRecord }).record;

describe('session record fixtures', () => {
  it('there is a fixture per format version', () => {
    expect(readdirSync(dir).sort()).toEqual(['session-1.v0.1.json', 'session-1.v0.2.json', 'session-2.future.json']);
  });

  it('reads a record written by 0.1', () => {
    const rec = decodeSession('k', fixture('session-1.v0.1.json'));
    expect(rec).toMatchObject({ grant: 'password', renewBy: 'refresh_token', status: 'active', scope: 'read' });
    expect(rec.tokens.refreshToken).toBe('rt-fixture-0.1');
    expect(rec.tokens.extra).toEqual({ ref: { type: 'user', id: 7 } });
    expect(rec.issuer).toBeUndefined();
  });

  it('reads a record written by 0.2, with every optional field', () => {
    const rec = decodeSession('k', fixture('session-1.v0.2.json'));
    expect(rec).toMatchObject({
      status: 'reauth-required',
      reason: 'renewal-interrupted',
      renewing: { by: '0123456789abcdef', at: 1790000000400 },
      issuer: 'https://auth.example.com',
      clientId: 'fixture-client',
      idleTtlMs: 86400000,
      renewedAt: 1790000000300,
    });
    expect(rec.tokens.issuedAt).toBe(4102441200000);
  });

  it('refuses a newer format as too new, not as corrupt, naming the key', () => {
    const err = (() => {
      try {
        decodeSession('tokenkeeper:s:future', fixture('session-2.future.json'));
      } catch (e) {
        return e as { code?: string; key?: string; message: string };
      }
    })();
    expect(err?.code).toBe('TOKENKEEPER_RECORD_TOO_NEW');
    expect(err?.key).toBe('tokenkeeper:s:future');
    expect(err?.message).toContain('session/2');
  });

  it('a manager restores a 0.1 record and refuses a future one', async () => {
    const store = memoryStore();
    await store.set('tokenkeeper:s:old', fixture('session-1.v0.1.json'));
    await store.set('tokenkeeper:s:future', fixture('session-2.future.json'));
    const manager = new SessionManager({ store, tokenEndpoint: 'https://as.example/token', client: { clientId: 'c' } });
    const old = await manager.get('old');
    expect(await old?.getAccessToken()).toBe('at-fixture-0.1');
    expect((await rejection(manager.get('future'))).code).toBe('TOKENKEEPER_RECORD_TOO_NEW');
  });
});
