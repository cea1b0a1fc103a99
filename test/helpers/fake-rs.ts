import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';

/**
 * A strict DPoP resource server (RFC 9449 §7) on 127.0.0.1: every request must carry
 * `Authorization: DPoP <token>` and a proof signed by the key in its header, with `htm`, `htu`
 * (no query or fragment), `ath` of that token, a `jti` never seen before and the current nonce,
 * which it rotates. A failed check is a 401 naming it; counts everything.
 */
export interface FakeResourceServer {
  readonly url: string;
  /** Rotate the nonce after this many accepted requests (default 5); 0: a new nonce on every request. */
  rotateEvery: number;
  readonly counts: { ok: number; nonceChallenges: number; refused: Record<string, number>; replays: number };
  /** The key thumbprints (jkt) of accepted proofs. */
  readonly thumbprints: Set<string>;
  close(): Promise<void>;
}

export async function startFakeResourceServer(): Promise<FakeResourceServer> {
  let nonce = randomBytes(12).toString('base64url');
  let sinceRotation = 0;
  const seen = new Set<string>();
  const rs: FakeResourceServer = {
    url: '',
    rotateEvery: 5,
    counts: { ok: 0, nonceChallenges: 0, refused: {}, replays: 0 },
    thumbprints: new Set(),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', rs.url);
    let body = '';
    for await (const chunk of req) body += chunk;
    const refuse = (why: string, error = 'invalid_dpop_proof') => {
      rs.counts.refused[why] = (rs.counts.refused[why] ?? 0) + 1;
      if (error === 'use_dpop_nonce') rs.counts.nonceChallenges++;
      res.writeHead(401, {
        'www-authenticate': `DPoP error="${error}", error_description="${why}", algs="ES256 EdDSA RS256"`,
        'dpop-nonce': nonce,
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ error, why }));
    };
    if (rs.rotateEvery === 0) nonce = randomBytes(12).toString('base64url'); // never the same twice
    const auth = req.headers.authorization ?? '';
    const proof = req.headers.dpop;
    if (!auth.startsWith('DPoP ')) return refuse('not the DPoP scheme');
    if (typeof proof !== 'string') return refuse('no proof');
    const token = auth.slice(5);
    let payload: Record<string, unknown>;
    let jwk: Record<string, unknown>;
    try {
      const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
      payload = verified.payload as Record<string, unknown>;
      jwk = verified.protectedHeader.jwk as Record<string, unknown>;
    } catch {
      return refuse('bad signature');
    }
    if ('d' in jwk) return refuse('private key in the proof');
    if (payload.htm !== req.method) return refuse('htm');
    if (payload.htu !== `${url.origin}${url.pathname}`) return refuse('htu');
    if (payload.ath !== createHash('sha256').update(token).digest('base64url')) return refuse('ath');
    if (typeof payload.jti !== 'string' || seen.has(payload.jti)) {
      rs.counts.replays++;
      return refuse('jti replayed');
    }
    seen.add(payload.jti);
    if (payload.nonce !== nonce) return refuse('nonce', 'use_dpop_nonce');
    rs.thumbprints.add(await calculateJwkThumbprint(jwk as never));
    rs.counts.ok++;
    if (rs.rotateEvery > 0 && ++sinceRotation >= rs.rotateEvery) {
      sinceRotation = 0;
      nonce = randomBytes(12).toString('base64url');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'dpop-nonce': nonce });
    res.end(JSON.stringify({ ok: true, method: req.method, query: url.search, body }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(rs, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  return rs;
}
