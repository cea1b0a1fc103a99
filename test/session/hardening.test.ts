// Hostile servers, hostile configuration and hand-edited records: every call either hands out a
// token valid now or throws a typed error, and no message, cause or event shows a secret.
import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { postgresStore } from '../../src/exports/postgres.js';
import { memoryStore, SessionManager, TokenSet } from '../../src/index.js';
import { rejection } from '../helpers/errors.js';
import { type FakeAuthServer, unusedPort } from '../helpers/fake-as.js';
import { startJsonServer } from '../helpers/json-server.js';
import { DATABASE_URL, runId } from '../helpers/services.js';
import { useFakeAuthServer } from '../helpers/session-fixture.js';

const fixture = useFakeAuthServer();
let as: FakeAuthServer;
beforeEach(() => {
  as = fixture.as;
});
const options = fixture.options;
const shown = (value: unknown) => `${inspect(value, { depth: 20, showHidden: true })} ${String(value)}`;

describe('no secret in any message', () => {
  it('refuses endpoint URLs that carry a user name or password, without echoing them', () => {
    for (const field of ['tokenEndpoint', 'issuer', 'revocationEndpoint'] as const) {
      let error: unknown;
      try {
        new SessionManager({
          tokenEndpoint: 'https://auth.example.com/token',
          client: { clientId: 'c' },
          [field]: 'https://admin:hunter2-pw@auth.example.com/token',
        });
      } catch (e) {
        error = e;
      }
      expect((error as { code?: string }).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
      expect((error as Error).message).toContain('must not carry a user name or password');
      expect(shown(error)).not.toContain('hunter2-pw');
    }
  });

  it('never shows an endpoint query string in a network failure', async () => {
    const port = await unusedPort();
    const manager = new SessionManager(
      options({ tokenEndpoint: `http://127.0.0.1:${port}/token?api_key=sekrit-query-value#frag` }),
    );
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    const err = await rejection(session.getAccessToken());
    expect(err.code).toBe('TOKENKEEPER_TOKEN_ENDPOINT');
    expect(err.message).toContain(`127.0.0.1:${port}/token`);
    expect(shown(err)).not.toContain('sekrit-query-value');
  });

  it('redacts a refresh token, client secret or password the server echoes in its error', async () => {
    const echo = await startJsonServer(({ body, json }) => {
      const p = new URLSearchParams(body);
      const said = `got ${p.get('refresh_token') ?? ''} ${p.get('password') ?? ''} secret s3cret-client`;
      if (p.get('grant_type') === 'refresh_token')
        return json(400, { error: 'invalid_grant', error_description: said });
      return json(400, { error: 'invalid_request', error_description: said });
    });
    const manager = new SessionManager(options({ tokenEndpoint: `${echo.base}/token` }));
    const events: unknown[] = [];
    manager.on('reauth-required', (e) => events.push(e));
    manager.on('error', (e) => events.push(e));
    const refreshToken = 'rt-echoed-back-123456';
    const session = await manager.adopt('u', {
      access_token: 'at-1',
      expires_in: 0,
      refresh_token: refreshToken,
    });
    const err = await rejection(session.getAccessToken());
    expect(err.code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
    expect(shown(err)).toContain('[redacted]');
    for (const secret of [refreshToken, 's3cret-client']) {
      expect(shown(err)).not.toContain(secret);
      expect(shown(events)).not.toContain(secret);
    }
    const login = await rejection(manager.login({ grant: 'password', username: 'a', password: 'pw-echoed-9876' }));
    expect(login.message).toContain('[redacted]');
    expect(shown(login)).not.toContain('pw-echoed-9876');
    expect(shown(login)).not.toContain('s3cret-client');
    await echo.close();
  });
});

describe('lifetimes and printing', () => {
  it('clamps absurd lifetimes, and every way of printing a session works for any value', async () => {
    const manager = new SessionManager(options());
    for (const expiresIn of [1e13, 1e300, Number.MAX_VALUE]) {
      const session = await manager.adopt('huge', { access_token: 'at', expires_in: expiresIn });
      expect(session.tokens.expiresAt).toBeLessThanOrEqual(Date.now() + 10 * 366 * 24 * 3600 * 1000);
      expect(() => [inspect(session), JSON.stringify(session), String(session), String(session.tokens)]).not.toThrow();
    }
    // A record edited by hand to a time no Date can hold still prints.
    const edited = TokenSet.fromStorable({ accessToken: 'x', tokenType: 'Bearer', expiresAt: 8.64e15 + 1 });
    expect(() => [inspect(edited), JSON.stringify(edited), String(edited)]).not.toThrow();
  });
});

describe('a token response too large to be a token', () => {
  it('is refused with a typed error before anything is stored (default 64 KiB, configurable)', async () => {
    const big = await startJsonServer(({ json }) =>
      json(200, { access_token: 'a'.repeat(5 * 1024 * 1024), token_type: 'Bearer', expires_in: 60 }),
    );
    const store = memoryStore();
    const manager = new SessionManager(options({ store, tokenEndpoint: `${big.base}/token` }));
    const err = await rejection(manager.login({ grant: 'client_credentials' }));
    expect(err.code).toBe('TOKENKEEPER_INVALID_TOKEN_RESPONSE');
    expect(err.message).toContain('maxResponseBytes');
    const keys: string[] = [];
    for await (const k of store.keys()) keys.push(k);
    expect(keys).toEqual([]);
    const roomy = new SessionManager(
      options({ store, tokenEndpoint: `${big.base}/token`, maxResponseBytes: 6 * 1024 * 1024 }),
    );
    expect((await roomy.login({ grant: 'client_credentials' })).tokens.accessToken).toHaveLength(5 * 1024 * 1024);
    expect(() => new SessionManager(options({ maxResponseBytes: -1 }))).toThrow(/maxResponseBytes/);
    await big.close();
  });
});

describe('a renewal returns a token valid now, or throws', () => {
  it('does not hand out the other record when someone marked the session reauth-required meanwhile', async () => {
    const store = memoryStore();
    const manager = new SessionManager(options({ store }));
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    as.latencyMs = 300;
    const pending = session.getAccessToken();
    await new Promise((r) => setTimeout(r, 100));
    // Another holder (its lease ran out first, say) writes an expired, reauth-required record.
    const entry = await store.get('tokenkeeper:s:u');
    await store.set('tokenkeeper:s:u', { ...(entry?.value ?? {}), status: 'reauth-required', reason: 'invalid_grant' });
    const err = await rejection(pending);
    expect(err.code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
  });

  it('does not hand out an expired token another holder wrote meanwhile', async () => {
    const store = memoryStore();
    const manager = new SessionManager(options({ store }));
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    as.latencyMs = 300;
    const pending = session.getAccessToken();
    await new Promise((r) => setTimeout(r, 100));
    const entry = await store.get('tokenkeeper:s:u');
    const value = { ...(entry?.value ?? {}) };
    delete value.renewing;
    await store.set('tokenkeeper:s:u', value); // active, but its token is expired
    const err = await rejection(pending);
    expect(err.code).toBe('TOKENKEEPER_VERSION_CONFLICT');
    expect(err.message).toContain('renewed concurrently');
  });

  it('session errors carry the store key as error.key and the session id as error.sessionId', async () => {
    const store = memoryStore();
    const manager = new SessionManager(options({ store }));
    const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
    await store.delete('tokenkeeper:s:u');
    const gone = await rejection(session.getAccessToken());
    expect(gone.code).toBe('TOKENKEEPER_NO_SESSION');
    expect([gone.key, gone.sessionId]).toEqual(['tokenkeeper:s:u', 'u']);
    const reauth = await manager.adopt('r', { access_token: 'x', expires_in: 0 });
    const err = await rejection(reauth.getAccessToken());
    expect(err.code).toBe('TOKENKEEPER_REAUTH_REQUIRED');
    expect([err.key, err.sessionId]).toEqual(['tokenkeeper:s:r', 'r']);
  });

  it('names the key when a stored session is not in tokenkeeper format', async () => {
    const store = memoryStore();
    await store.set('tokenkeeper:s:odd', { tokenkeeper: 'session/1', grant: 7 });
    const manager = new SessionManager(options({ store }));
    const err = await rejection(manager.get('odd'));
    expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
    expect(err.message).toContain('tokenkeeper:s:odd');
  });
});

describe('PostgreSQL rows edited by hand', () => {
  const admin = new pg.Pool({ connectionString: DATABASE_URL });
  const tables: string[] = [];
  afterAll(async () => {
    for (const t of tables) await admin.query(`DROP TABLE IF EXISTS "${t}", "${t}_locks"`);
    await admin.end();
  });

  it('a NULL, zero or negative version is a corrupt record, found before any refresh is sent', async () => {
    const table = runId();
    tables.push(table);
    // A table made by hand, without the NOT NULL the store's own migration has.
    await admin.query(
      `CREATE TABLE "${table}" (key text COLLATE "C" PRIMARY KEY, value text NOT NULL, version bigint, expires_at bigint)`,
    );
    await admin.query(
      `CREATE TABLE "${table}_locks" (key text COLLATE "C" PRIMARY KEY, token text NOT NULL, expires_at bigint NOT NULL, pid integer, host text)`,
    );
    const store = postgresStore({ pool: admin }, { table, createTable: false });
    const manager = new SessionManager(options({ store }));
    for (const version of ['NULL', '0', '-5']) {
      const session = await manager.adopt('u', as.issue({ expiresIn: 0 }));
      as.resetCounts();
      await admin.query(`UPDATE "${table}" SET version = ${version} WHERE key = 'tokenkeeper:s:u'`);
      const err = await rejection(session.getAccessToken());
      expect(err.code).toBe('TOKENKEEPER_CORRUPT_RECORD');
      expect(err.key).toBe('tokenkeeper:s:u');
      expect(as.counts.received).toBe(0);
      await admin.query(`DELETE FROM "${table}"`);
    }
  });
});
