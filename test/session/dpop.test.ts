import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileStore } from '../../src/exports/file.js';
import { memoryStore, SessionManager, type SessionManagerOptions, type StoreRecord } from '../../src/index.js';
import { loginWithBrowser } from '../../src/session/login/loopback.js';
import { launchChromium } from '../helpers/browser.js';
import { browserLogin, DPOP_TEST_KEY } from '../helpers/dpop-login.js';
import { rejection, thrown } from '../helpers/errors.js';
import { type FakeAuthServer, startFakeAuthServer } from '../helpers/fake-as.js';
import { type FakeResourceServer, startFakeResourceServer } from '../helpers/fake-rs.js';
import { type RealAuthServer, startRealAuthServer } from '../helpers/oidc.js';
import { offline, signIn } from '../helpers/sign-in.js';

// DPoP-bound sessions (RFC 9449) against oidc-provider with DPoP on, nonces required, refresh
// token rotation and a public client; a strict fake resource server; every bad input.

let op: RealAuthServer;
let rs: FakeResourceServer;
let fake: FakeAuthServer;
let browser: Browser;
const dirs: string[] = [];
const encryption = { keys: { k1: DPOP_TEST_KEY }, current: 'k1' };

beforeAll(async () => {
  op = await startRealAuthServer();
  rs = await startFakeResourceServer();
  fake = await startFakeAuthServer();
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await op?.close();
  await rs?.close();
  await fake?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function options(extra: Partial<SessionManagerOptions> = {}): SessionManagerOptions {
  return {
    store: memoryStore(),
    issuer: op.issuer,
    client: { clientId: op.dpopClientId },
    encryption,
    dpop: true,
    ...extra,
  };
}

describe('a DPoP session against oidc-provider (nonces required, rotation, public client)', () => {
  it('logs in, calls the API, refreshes and revokes, every request with a proof; the key is stored encrypted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-dpop-'));
    dirs.push(dir);
    const manager = new SessionManager(options({ store: fileStore({ path: dir }) }));
    const session = await browserLogin(browser, manager);
    expect(session.tokens.tokenType.toLowerCase()).toBe('dpop');
    expect(session.tokens.authorizationHeader()).toMatch(/^DPoP /);
    // The file holds the key only encrypted: no JWK member in the clear.
    const files = readdirSync(dir, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.json'));
    const raw = files.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    expect(raw).not.toMatch(/"jwk"|"kty"|"crv"/);

    const me = await session.fetch(`${op.issuer}/me`); // userinfo: DPoP-bound, nonce required
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ sub: 'alice' });

    const before = session.tokens.accessToken;
    const refreshes = op.counts.refresh_token;
    const fresh = await session.getAccessToken({ forceRefresh: true });
    expect(fresh).not.toBe(before);
    expect(op.counts.refresh_token).toBe(refreshes + 1);
    expect((await session.fetch(`${op.issuer}/me`)).status).toBe(200);

    // Another manager (another process) signs with the same key, read from the record.
    const other = new SessionManager(options({ store: fileStore({ path: dir }) }));
    const again = await other.get(session.id);
    expect((await again?.fetch(`${op.issuer}/me`))?.status).toBe(200);

    const revocations = op.counts.revocations;
    expect(await session.logout()).toEqual({ revoked: true, refreshToken: 'revoked', accessToken: 'revoked' });
    expect(op.counts.revocations).toBe(revocations + 2); // the refresh token, then the access token, each with a proof
    expect(await other.get(session.id)).toBeUndefined();
  }, 30_000);

  it('a token without its proof is refused by the server: the binding is real', async () => {
    const manager = new SessionManager(options());
    const session = await browserLogin(browser, manager);
    const bare = await fetch(`${op.issuer}/me`, { headers: { authorization: `Bearer ${session.tokens.accessToken}` } });
    expect(bare.status).toBe(401);
  }, 30_000);
});

describe('resource requests against a strict DPoP resource server', () => {
  it('signs htm, htu (no query), ath and a fresh jti, follows the nonce as it rotates, and never replays a proof', async () => {
    const manager = new SessionManager(options());
    const session = await browserLogin(browser, manager);
    rs.rotateEvery = 3;
    const before = { ...rs.counts, refused: { ...rs.counts.refused } };
    for (let i = 0; i < 10; i++) {
      const response = await session.fetch(`${rs.url}/things?page=${i}#frag`, {
        method: i % 2 ? 'POST' : 'GET',
        ...(i % 2 ? { body: `body-${i}` } : {}),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ method: i % 2 ? 'POST' : 'GET', query: `?page=${i}` });
    }
    expect(rs.counts.ok - before.ok).toBe(10);
    expect(rs.counts.replays).toBe(0);
    // One challenge for the first nonce, then one per rotation at most: never a failed call.
    expect(rs.counts.nonceChallenges - before.nonceChallenges).toBeLessThanOrEqual(4);
    expect(Object.keys(rs.counts.refused).filter((k) => k !== 'nonce')).toEqual(
      Object.keys(before.refused).filter((k) => k !== 'nonce'),
    );
    expect(rs.thumbprints.size).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('dpopProof() gives a proof for your own HTTP client', async () => {
    const manager = new SessionManager(options());
    const session = await browserLogin(browser, manager);
    rs.rotateEvery = 5;
    // First learn the server's nonce (its challenge carries one).
    await session.fetch(`${rs.url}/warm-up`);
    const proof = await session.dpopProof('get', `${rs.url}/mine?x=1`);
    const response = await fetch(`${rs.url}/mine?x=1`, {
      headers: { authorization: `DPoP ${await session.getAccessToken()}`, dpop: proof },
    });
    expect(response.status).toBe(200);
    const bearer = new SessionManager({
      store: memoryStore(),
      issuer: op.issuer,
      client: { clientId: op.clientId, clientSecret: op.clientSecret },
    });
    const plain = await bearer.login({ grant: 'client_credentials' });
    expect((await rejection(plain.dpopProof('GET', rs.url))).code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
  }, 30_000);

  it('a nonce that changes on every request: two tries, then the answer as it is (no loop)', async () => {
    const manager = new SessionManager(options());
    const session = await browserLogin(browser, manager);
    rs.rotateEvery = 0;
    const before = rs.counts.nonceChallenges;
    const response = await session.fetch(`${rs.url}/never`);
    expect(response.status).toBe(401);
    expect(rs.counts.nonceChallenges - before).toBe(2);
    rs.rotateEvery = 5;
  }, 30_000);
});

describe('bad input, each with its typed error', () => {
  it('an unencrypted server store is refused: the private key would be stored in the clear', () => {
    const err = thrown(() => new SessionManager({ ...options(), encryption: undefined }));
    expect(err.code).toBe('TOKENKEEPER_INVALID_ARGUMENT');
    expect(err.message).toContain('encryption');
  });

  it('an unknown algorithm, or a key pair of the wrong algorithm, is refused', async () => {
    expect(thrown(() => new SessionManager(options({ dpop: 'HS256' as never }))).message).toContain(
      'ES256, EdDSA or RS256',
    );
    const wrong = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    expect(thrown(() => new SessionManager(options({ dpop: { keyPair: wrong } }))).message).toContain('P-256');
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const hidden = {
      privateKey: pair.privateKey,
      publicKey: await crypto.subtle.importKey(
        'jwk',
        await crypto.subtle.exportKey('jwk', pair.publicKey),
        { name: 'ECDSA', namedCurve: 'P-256' },
        false,
        ['verify'],
      ),
    };
    expect(thrown(() => new SessionManager(options({ dpop: { keyPair: hidden } }))).message).toContain('extractable');
  });

  it('binds the authorization code to the session key (dpop_jkt): a code redeemed with another key is refused', async () => {
    const store = memoryStore();
    const manager = new SessionManager(options({ store }));
    const context = await browser.newContext();
    await offline(context);
    const page = await context.newPage();
    const capture = createServer((req, res) => {
      landed = `http://127.0.0.1${req.url}`;
      res.end('captured');
    });
    let landed = '';
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
    const redirectUri = `http://127.0.0.1:${(capture.address() as AddressInfo).port}/callback`;
    try {
      const login = async (sessionId: string, unbound = false) => {
        landed = '';
        const started = await manager.authorize({
          redirectUri,
          scope: 'openid offline_access',
          prompt: 'consent',
          sessionId,
        });
        const url = new URL(started.url);
        const jkt = url.searchParams.get('dpop_jkt');
        if (unbound) url.searchParams.delete('dpop_jkt');
        await signIn(page, url.href, () => landed !== '');
        return { ...started, jkt };
      };
      const swapKey = async (state: string, dpop: unknown) => {
        const pendingKey = `tokenkeeper:login:${state}`;
        const pending = (await manager.store.get(pendingKey))?.value as StoreRecord;
        await manager.store.set(pendingKey, { ...pending, dpop } as StoreRecord);
      };
      // The URL names the key the session is then bound to.
      const first = await login('bound');
      expect(first.jkt).toMatch(/^[\w-]{43}$/);
      await manager.callback(landed);
      const rec = (await manager.store.get('tokenkeeper:s:bound'))?.value as { dpop: { jkt: string } };
      expect(rec.dpop.jkt).toBe(first.jkt);
      // A pending login whose key was swapped after the code was issued: the server refuses the
      // proof of the other key, and nothing is stored.
      const second = await login('swapped');
      await swapKey(second.state, rec.dpop);
      expect((await rejection(manager.callback(landed))).code).toBe('TOKENKEEPER_INVALID_GRANT');
      expect(await manager.get('swapped')).toBeUndefined();
      // Control: the same swap on a URL without dpop_jkt goes through, so the binding is what refused it.
      const third = await login('unbound', true);
      await swapKey(third.state, rec.dpop);
      expect((await manager.callback(landed)).id).toBe('unbound');
    } finally {
      capture.close();
      await context.close();
    }
  });

  it('DPoP with a pushed authorization request, as AT Protocol servers require: the tokens come back bound', async () => {
    const manager = new SessionManager(options());
    const context = await browser.newContext();
    await offline(context);
    const page = await context.newPage();
    try {
      let opened = '';
      const session = await loginWithBrowser(manager, {
        scope: 'openid offline_access',
        prompt: 'consent',
        par: true,
        open: async (url) => {
          opened = url;
          await signIn(page, url, () => new URL(page.url()).pathname === '/callback');
        },
      });
      expect(new URL(opened).searchParams.has('dpop_jkt')).toBe(false); // pushed, not in the URL
      expect(session.tokens.tokenType.toLowerCase()).toBe('dpop');
      expect((await session.fetch(`${op.issuer}/me`)).status).toBe(200);
    } finally {
      await context.close();
    }
  });

  it('a session record whose key is missing, corrupt, or of another algorithm: TOKENKEEPER_DPOP, nothing sent', async () => {
    const store = memoryStore();
    const manager = new SessionManager(options({ store }));
    const session = await browserLogin(browser, manager, 'alice', 'broken');
    const key = 'tokenkeeper:s:broken';
    const plain = new SessionManager({ ...options({ store }), dpop: false });
    const original = (await plain.store.get(key))?.value as StoreRecord & { dpop: Record<string, unknown> };
    const { jwk: _jwk, ...withoutKey } = original.dpop;
    const variants: [string, unknown][] = [
      ['missing', undefined],
      ['key missing', withoutKey],
      ['corrupt', { ...original.dpop, jwk: { ...(original.dpop.jwk as object), d: 'not-a-key' } }],
      ['another algorithm', { ...original.dpop, alg: 'EdDSA' }],
    ];
    const refreshes = op.counts.refresh_token;
    for (const [what, dpop] of variants) {
      const value = { ...original, dpop } as StoreRecord;
      if (dpop === undefined) delete (value as Record<string, unknown>).dpop;
      await plain.store.set(key, value);
      const fresh = new SessionManager(options({ store }));
      const s = await fresh.get('broken');
      if (dpop === undefined) {
        // Without its key the record reads as a bearer session: the server refuses the token.
        expect((await s?.fetch(`${op.issuer}/me`))?.status, what).toBeGreaterThanOrEqual(400);
        continue;
      }
      const err = await rejection(s?.getAccessToken({ forceRefresh: true }) as Promise<string>);
      expect(err.code, what).toBe('TOKENKEEPER_DPOP');
      expect(err.message).toContain('"broken"');
    }
    expect(op.counts.refresh_token).toBe(refreshes);
    expect(session.id).toBe('broken');
  }, 30_000);

  it('a DPoP-bound session read by a manager without dpop: TOKENKEEPER_DPOP', async () => {
    const store = memoryStore();
    await browserLogin(browser, new SessionManager(options({ store })), 'alice', 'bound');
    const plain = new SessionManager({ ...options({ store }), dpop: false });
    const session = await plain.get('bound');
    expect((await rejection(session?.fetch(`${op.issuer}/me`) as Promise<Response>)).code).toBe('TOKENKEEPER_DPOP');
  }, 30_000);

  it('a server that answers Bearer to a request with a proof: TOKENKEEPER_DPOP, unless allowBearer', async () => {
    const base = {
      store: memoryStore(),
      tokenEndpoint: fake.tokenEndpoint,
      client: { clientId: fake.clientId, clientSecret: fake.clientSecret },
      encryption,
    };
    const strict = new SessionManager({ ...base, dpop: true });
    const err = await rejection(strict.login({ grant: 'client_credentials' }));
    expect(err.code).toBe('TOKENKEEPER_DPOP');
    expect(err.message).toContain('bearer');
    const lenient = new SessionManager({ ...base, dpop: { allowBearer: true } });
    expect((await lenient.login({ grant: 'client_credentials' })).tokens.tokenType.toLowerCase()).toBe('bearer');
  });
});
