import * as oauth from 'oauth4webapi';
import { type ErrorCode, redactedCause, TokenkeeperError } from '../errors.js';
import { sleep } from '../store/kit/records.js';
import { TokenSet } from '../token/token-set.js';
import type { DpopSigner } from './dpop-options.js';
import type { Instrumentation } from './instrumentation.js';

/**
 * How the client authenticates at the token, device and revocation endpoints (RFC 6749 §2.3,
 * RFC 7523 / OpenID Connect Core §9 for the two JWT methods).
 */
export type ClientAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'client_secret_jwt'
  | 'private_key_jwt'
  | 'none';

export interface ClientOptions {
  clientId: string;
  /** Omit for a public client. */
  clientSecret?: string;
  /**
   * For `private_key_jwt`: the client's private key, a `CryptoKey` (it may be non-extractable) or
   * a private JWK. A JWK says its algorithm with `alg`, or is an EC P-256/P-384/P-521 (ES256/384/512),
   * RSA (RS256) or Ed25519 (EdDSA) key.
   */
  privateKey?: CryptoKey | JsonWebKey;
  /** The `kid` of `privateKey` as registered at the server (default: the JWK's own `kid`). */
  keyId?: string;
  /**
   * Default: `private_key_jwt` with a `privateKey`, `client_secret_basic` with a secret, `none`
   * without either.
   */
  authMethod?: ClientAuthMethod;
}

export interface RetryOptions {
  /** Tries in all for one token request (default 3). */
  attempts?: number;
  /** First back-off delay; doubles each time, with jitter (default 250 ms). */
  baseDelayMs?: number;
  /** Longest back-off delay, `Retry-After` included (default 5 s). */
  maxDelayMs?: number;
  /** Time limit of one HTTP request (default 10 s). */
  timeoutMs?: number;
}

export interface EndpointOptions {
  /**
   * The issuer, for discovery (RFC 8414 / OpenID Connect Discovery). Discovery asks
   * `<issuer>/.well-known/openid-configuration`, then `/.well-known/oauth-authorization-server<path>`;
   * a server that redirects one of these to the same URL with a trailing slash (django-oauth-toolkit)
   * is followed there, and nowhere else. The metadata's `issuer` must equal this.
   */
  issuer?: string;
  /**
   * The full URL of the server's metadata, for servers that serve it somewhere discovery does not
   * look. Needs `issuer`, which the metadata's `issuer` must equal.
   */
  discoveryUrl?: string;
  /** The token endpoint; with it, no discovery happens. */
  tokenEndpoint?: string;
  /** The revocation endpoint (RFC 7009), for `logout()`, when the metadata lists none. */
  revocationEndpoint?: string;
  /**
   * The server's JSON Web Key Set, to check ID token signatures when there is no discovery (or the
   * metadata lists no `jwks_uri`).
   */
  jwksUri?: string;
  /** The authorization endpoint, for `authorize()` when there is no discovery. */
  authorizationEndpoint?: string;
  /** The device authorization endpoint (RFC 8628), for the device flow when there is no discovery. */
  deviceAuthorizationEndpoint?: string;
  /** The pushed authorization request endpoint (RFC 9126), for `authorize({ par: true })` when there is no discovery. */
  pushedAuthorizationRequestEndpoint?: string;
  /** Allow `http://` endpoints on hosts other than loopback. Never do this in production. */
  allowInsecureHttp?: boolean;
  /**
   * The largest token endpoint response accepted, in bytes (default 64 KiB). A larger one is
   * refused with `TOKENKEEPER_INVALID_TOKEN_RESPONSE` before anything is stored.
   */
  maxResponseBytes?: number;
  /** A `fetch` to use instead of the global one (proxies, tracing). */
  fetch?: typeof fetch;
}

/** An error from the token or revocation endpoint, with what the server said (never a token). */
export class TokenEndpointError extends TokenkeeperError {
  /** The OAuth error code the server returned (`invalid_grant`, `invalid_client`, ...), if any. */
  readonly oauthError: string | undefined;
  /** The HTTP status, if a response arrived. */
  readonly status: number | undefined;
  /**
   * True when the server may have processed the request although no usable answer came back (a
   * timeout or a connection lost after sending, a gateway's 5xx): for a refresh, the server may
   * have rotated the token.
   */
  readonly outcomeUnknown: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    details: { oauthError?: string; status?: number; cause?: unknown; outcomeUnknown?: boolean },
  ) {
    super(code, message, { cause: details.cause });
    this.name = 'TokenEndpointError';
    this.oauthError = details.oauthError;
    this.status = details.status;
    this.outcomeUnknown = details.outcomeUnknown === true;
  }
}

/**
 * What a login grant obtained: the tokens, and the validated claims of the ID token when one came
 * with them (checked as `callback()` checks it: JWKS signature, `iss`, `aud`, `exp`). The ID token
 * itself is not kept in the tokens.
 */
export interface Obtained {
  tokens: TokenSet;
  claims?: Record<string, unknown>;
}

/**
 * Called right before each refresh request is sent; throws to send nothing. The session engine
 * uses it to confirm its lock lease will outlast the request (see `engine/renewal.ts`).
 */
export type SendGuard = () => Promise<void>;

/**
 * What a request is, for its retry policy: a refresh rotates the token it sends, and a `once`
 * request (an authorization code) is spent by its first use: neither is sent twice unless the
 * server surely did not process it.
 */
type Grant = { kind: 'refresh_token' } | { kind: 'other'; name: string; once?: boolean };

/** Sends one request to an endpoint of `as`, authenticated with `auth` (an oauth4webapi `*Request` call). */
export type EndpointRequest = (
  as: oauth.AuthorizationServer,
  o: oauth.TokenEndpointRequestOptions,
  auth: oauth.ClientAuth,
) => Promise<Response>;

/** Reads an endpoint's answer (an oauth4webapi `process*` call). */
export type ResponseReader<T> = (as: oauth.AuthorizationServer, response: Response) => Promise<T>;

/** The token exchange grant type (RFC 8693). */
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;

const LOOPBACK = /^(localhost|.+\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** Whether `hostname` (as a `URL` gives it) is a loopback host: `localhost`, `127.x.x.x`, `[::1]`. */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.test(hostname);
}

/** Checks an endpoint URL: https, or http on loopback (or anywhere when explicitly allowed). */
export function checkEndpoint(what: string, value: unknown, allowInsecureHttp: boolean): URL {
  let url: URL;
  try {
    if (typeof value !== 'string') throw new Error('not a string');
    url = new URL(value);
  } catch {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${what} must be an absolute URL, got ${describe(value)}.`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${what} (${url.protocol}//${url.host}) must not carry a user name or password: they would be sent, and shown, ` +
        'with every request. Give the client credentials as client.clientId and client.clientSecret.',
    );
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && (allowInsecureHttp || LOOPBACK.test(url.hostname))) return url;
  throw new TokenkeeperError(
    url.protocol === 'http:' ? 'TOKENKEEPER_INSECURE_ENDPOINT' : 'TOKENKEEPER_INVALID_ARGUMENT',
    url.protocol === 'http:'
      ? `${what} ${url.origin} uses plain http, which would send tokens and the client secret in the clear. ` +
          'Use https; plain http is accepted only on loopback, or with allowInsecureHttp: true.'
      : `${what} must be an http(s) URL, got ${url.protocol}.`,
  );
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : typeof value;
}

/**
 * The OAuth protocol, through oauth4webapi: discovery, the grants, refresh, revocation, with
 * bounded retries. Refresh-token requests are retried only when the request surely did not
 * reach the server (connection refused) or the server answered 5xx or 429: retrying a request
 * that may have been processed would replay a rotated refresh token and revoke the family.
 */
export class OAuthClient {
  readonly #endpoints: EndpointOptions;
  readonly #client: oauth.Client;
  /** How the client authenticates: a promise, since a private JWK is imported first. */
  readonly #auth: Promise<oauth.ClientAuth>;
  readonly #retry: Required<RetryOptions>;
  readonly #maxResponseBytes: number;
  /** Secrets the client itself sends: scrubbed from every server-supplied text we keep. */
  readonly #secrets: string[];
  #server: Promise<oauth.AuthorizationServer> | undefined;

  readonly #instrumentation: Instrumentation | undefined;

  constructor(
    endpoints: EndpointOptions,
    client: ClientOptions,
    retry: RetryOptions = {},
    instrumentation?: Instrumentation,
  ) {
    this.#instrumentation = instrumentation;
    const allow = endpoints.allowInsecureHttp === true;
    if (endpoints.issuer === undefined && endpoints.tokenEndpoint === undefined) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        endpoints.discoveryUrl === undefined
          ? 'Give an issuer (for discovery) or a tokenEndpoint, so tokenkeeper knows where to ask for tokens.'
          : 'discoveryUrl needs the issuer too: the issuer named in the metadata must equal it.',
      );
    }
    if (endpoints.issuer !== undefined) checkEndpoint('issuer', endpoints.issuer, allow);
    if (endpoints.tokenEndpoint !== undefined) checkEndpoint('tokenEndpoint', endpoints.tokenEndpoint, allow);
    for (const name of [
      'discoveryUrl',
      'jwksUri',
      'revocationEndpoint',
      'authorizationEndpoint',
      'deviceAuthorizationEndpoint',
      'pushedAuthorizationRequestEndpoint',
    ] as const) {
      if (endpoints[name] !== undefined) checkEndpoint(name, endpoints[name], allow);
    }
    if (typeof client !== 'object' || client === null || typeof client.clientId !== 'string' || !client.clientId) {
      throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'client.clientId is required (a non-empty string).');
    }
    if (client.clientSecret !== undefined && typeof client.clientSecret !== 'string') {
      throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', 'client.clientSecret must be a string when given.');
    }
    this.#auth = clientAuth(client);
    this.#endpoints = { ...endpoints };
    this.#maxResponseBytes = positive('maxResponseBytes', endpoints.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
    this.#secrets = client.clientSecret ? [client.clientSecret] : [];
    this.#client = { client_id: client.clientId };
    this.#retry = {
      attempts: positive('retry.attempts', retry.attempts ?? 3),
      baseDelayMs: positive('retry.baseDelayMs', retry.baseDelayMs ?? 250),
      maxDelayMs: positive('retry.maxDelayMs', retry.maxDelayMs ?? 5_000),
      timeoutMs: positive('retry.timeoutMs', retry.timeoutMs ?? 10_000),
    };
  }

  /** The authorization server's metadata: discovered once, or built from the endpoints given. */
  server(): Promise<oauth.AuthorizationServer> {
    this.#server ??= this.#resolve().catch((error) => {
      this.#server = undefined; // try discovery again next time
      throw error;
    });
    return this.#server;
  }

  clientCredentials(scope?: string, dpop?: DpopSigner): Promise<Obtained> {
    const params: Record<string, string> = scope ? { scope } : {};
    return this.#token(
      { kind: 'other', name: 'client_credentials' },
      [],
      (as, o, auth) => oauth.clientCredentialsGrantRequest(as, this.#client, auth, params, o),
      undefined,
      undefined,
      dpop,
    );
  }

  password(username: string, password: string, scope?: string, dpop?: DpopSigner): Promise<Obtained> {
    const params: Record<string, string> = { username, password };
    if (scope) params.scope = scope;
    return this.#token(
      { kind: 'other', name: 'password' },
      [password],
      (as, o, auth) => oauth.genericTokenEndpointRequest(as, this.#client, auth, 'password', params, o),
      undefined,
      undefined,
      dpop,
    );
  }

  /** A code the app got and checked itself; `authorize()`/`callback()` use {@link codeCallback}. */
  authorizationCode(code: string, redirectUri: string, codeVerifier?: string, dpop?: DpopSigner): Promise<Obtained> {
    const params = new URLSearchParams({ code, redirect_uri: redirectUri });
    if (codeVerifier) params.set('code_verifier', codeVerifier);
    return this.#token(
      { kind: 'other', name: 'authorization_code', once: true },
      [code, codeVerifier ?? ''],
      (as, o, auth) => oauth.genericTokenEndpointRequest(as, this.#client, auth, 'authorization_code', params, o),
      undefined,
      undefined,
      dpop,
    );
  }

  /** Options for oauth4webapi's own requests (the JWKS): the client's timeout and fetch. */
  signatureOptions(): oauth.ValidateSignatureOptions {
    return this.#requestOptions(this.#retry.timeoutMs) as unknown as oauth.ValidateSignatureOptions;
  }

  /**
   * A request to another endpoint of the server (device authorization, ...), with the client's
   * authentication, the timeout and retries, the size limit, and typed errors; `process` reads
   * the answer (an oauth4webapi `process*` function).
   */
  async endpoint<T>(
    what: string,
    send: (
      as: oauth.AuthorizationServer,
      o: oauth.TokenEndpointRequestOptions,
      auth: oauth.ClientAuth,
    ) => Promise<Response>,
    process: (as: oauth.AuthorizationServer, response: Response) => Promise<T>,
  ): Promise<T> {
    const as = await this.server();
    const auth = await this.#auth;
    const raw = await this.#send(as, { kind: 'other', name: what }, [], undefined, (o) => send(as, o, auth));
    const response = await this.#limited(raw, what, false, []);
    if (response.status >= 400) throw await errorResponse(response, what, this.#scrubber([]));
    try {
      return await process(as, response);
    } catch (error) {
      throw endpointError(error, what, response.status, this.#scrubber([]));
    }
  }

  /**
   * A token request of grant `name` built by `request` (the login flows' grants), answered
   * through `process` (default: the generic token response).
   */
  grant(
    name: string,
    secrets: string[],
    request: EndpointRequest,
    process?: ResponseReader<oauth.TokenEndpointResponse>,
    dpop?: DpopSigner,
    once?: boolean,
  ): Promise<Obtained> {
    const grant: Grant = once ? { kind: 'other', name, once } : { kind: 'other', name };
    return this.#token(grant, secrets, request, undefined, process, dpop);
  }

  /** The client's id, as oauth4webapi takes it. */
  get client(): oauth.Client {
    return this.#client;
  }

  /** The token exchange grant (RFC 8693) with its parameters (`subject_token`, `audience`, ...). */
  tokenExchange(params: Record<string, string>, dpop?: DpopSigner): Promise<Obtained> {
    const secrets = [params.subject_token ?? '', params.actor_token ?? ''];
    return this.#token(
      { kind: 'other', name: 'token_exchange' },
      secrets,
      (as, o, auth) => oauth.genericTokenEndpointRequest(as, this.#client, auth, TOKEN_EXCHANGE, params, o),
      undefined,
      undefined,
      dpop,
    );
  }

  /**
   * The refresh_token grant. `guard` runs before every attempt and can stop it (the engine's
   * lease fence). Retried only when the request surely did not reach the server, or the server
   * answered 429 or 503 (it did not process it): a 500, 502 or 504, a timeout or a connection
   * lost after sending may hide a rotation, so the error says `outcomeUnknown` instead.
   */
  async refresh(refreshToken: string, scope?: string, guard?: SendGuard, dpop?: DpopSigner): Promise<TokenSet> {
    const { tokens } = await this.#token(
      { kind: 'refresh_token' },
      [refreshToken],
      (as, o, auth) =>
        oauth.refreshTokenGrantRequest(
          as,
          this.#client,
          auth,
          refreshToken,
          scope ? { ...o, additionalParameters: { scope } } : o,
        ),
      guard,
      undefined,
      dpop,
    );
    return tokens;
  }

  /** Revokes a token (RFC 7009). Returns false when the server has no revocation endpoint. */
  async revoke(token: string, hint: 'refresh_token' | 'access_token', dpop?: DpopSigner): Promise<boolean> {
    const as = await this.server();
    if (as.revocation_endpoint === undefined) return false;
    const auth = await this.#auth;
    const secrets = [token];
    const grant = { kind: 'other', name: 'revocation' } as const;
    const { response } = await this.#answered(as, grant, secrets, undefined, dpop, (o) =>
      oauth.revocationRequest(as, this.#client, auth, token, { ...o, additionalParameters: { token_type_hint: hint } }),
    );
    try {
      await oauth.processRevocationResponse(response);
    } catch (error) {
      throw endpointError(error, 'revocation', response.status, this.#scrubber(secrets));
    }
    return true;
  }

  async #token(
    grant: Grant,
    secrets: string[],
    request: EndpointRequest,
    guard?: SendGuard,
    process?: ResponseReader<oauth.TokenEndpointResponse>,
    dpop?: DpopSigner,
  ): Promise<Obtained> {
    const as = await this.server();
    const auth = await this.#auth;
    const what = grant.kind === 'refresh_token' ? 'refresh_token' : grant.name;
    const rotates = grant.kind === 'refresh_token';
    const { response, sentAt } = await this.#answered(as, grant, secrets, guard, dpop, (o) => request(as, o, auth));
    let body: oauth.TokenEndpointResponse;
    try {
      body = await (process
        ? process(as, response)
        : rotates
          ? oauth.processRefreshTokenResponse(as, this.#client, response)
          : oauth.processGenericTokenEndpointResponse(as, this.#client, response));
    } catch (error) {
      if (isIdTokenError(error)) throw idTokenError(error);
      throw endpointError(error, what, response.status, this.#scrubber(secrets), rotates && response.status === 200);
    }
    if (dpop !== undefined && !dpop.allowBearer && String(body.token_type).toLowerCase() !== 'dpop') {
      throw new TokenEndpointError(
        'TOKENKEEPER_DPOP',
        `The ${what} request carried a DPoP proof, but the server answered with a ${scrubUrls(String(body.token_type)).slice(0, 20)} token, not bound to the key; nothing was stored. ` +
          'Turn DPoP on for this client at the server, or pass dpop: { allowBearer: true } to accept unbound tokens.',
        { status: response.status, outcomeUnknown: rotates },
      );
    }
    const tokens = TokenSet.fromResponse(body, sentAt);
    // A login's ID token (a refresh's keeps the session's claims): its claims were checked while
    // the response was read; its signature is checked here, against the server's JWKS.
    if (rotates || body.id_token === undefined) return { tokens };
    try {
      await oauth.validateApplicationLevelSignature(as, response, this.signatureOptions());
    } catch (error) {
      throw idTokenError(error);
    }
    return { tokens: tokens.with({ idToken: undefined }), claims: { ...oauth.getValidatedIdTokenClaims(body) } };
  }

  /**
   * Sends a request to an endpoint and reads its answer (refused past `maxResponseBytes`); an
   * error answer throws. A DPoP `use_dpop_nonce` answer means the server processed nothing and
   * wants its nonce in the proof (RFC 9449 §8): the same request goes again once, with the nonce
   * the proof signer has learnt; a second such answer is an error, not a loop.
   */
  async #answered(
    as: oauth.AuthorizationServer,
    grant: Grant,
    secrets: string[],
    guard: SendGuard | undefined,
    dpop: DpopSigner | undefined,
    request: (o: oauth.TokenEndpointRequestOptions) => Promise<Response>,
  ): Promise<{ response: Response; sentAt: number }> {
    const what = grant.kind === 'refresh_token' ? 'refresh_token' : grant.name;
    for (let nonceRetry = false; ; nonceRetry = true) {
      const sentAt = Date.now(); // expiry counts from when we asked: never later than the server's clock
      const raw = await this.#send(as, grant, secrets, guard, request, dpop);
      const response = await this.#limited(raw, what, grant.kind === 'refresh_token' && raw.status === 200, secrets);
      if (response.status < 400) return { response, sentAt };
      const error = await errorResponse(response, what, this.#scrubber(secrets));
      if (dpop === undefined || error.oauthError !== 'use_dpop_nonce' || nonceRetry) throw error;
    }
  }

  /** The response with its body read, refused past `maxResponseBytes` (never buffered whole). */
  async #limited(response: Response, what: string, rotated: boolean, secrets: string[]): Promise<Response> {
    const max = this.#maxResponseBytes;
    const declared = Number(response.headers.get('content-length'));
    const tooLarge = (): never => {
      throw new TokenEndpointError(
        'TOKENKEEPER_INVALID_TOKEN_RESPONSE',
        `The ${what} response (HTTP ${response.status}) is larger than maxResponseBytes (${max} bytes); nothing was stored. ` +
          'Raise maxResponseBytes if your server really sends tokens this large.',
        { status: response.status, outcomeUnknown: rotated },
      );
    };
    if (Number.isFinite(declared) && declared > max) {
      await response.body?.cancel().catch(() => {});
      tooLarge();
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = response.body?.getReader();
    if (reader !== undefined) {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (size > max) {
            await reader.cancel().catch(() => {});
            tooLarge();
          }
          chunks.push(value);
        }
      } catch (error) {
        if (error instanceof TokenkeeperError) throw error;
        throw new TokenEndpointError(
          'TOKENKEEPER_TOKEN_ENDPOINT',
          `The ${what} response (HTTP ${response.status}) broke off while it was read (${this.#scrubber(secrets)(networkReason(error))}).`,
          { status: response.status, outcomeUnknown: rotated || what === 'refresh_token' },
        );
      }
    }
    const body = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.byteLength;
    }
    return new Response(response.status === 204 || response.status === 304 ? null : body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }

  /** Replaces every secret this request carried, and every URL's query, in a server-supplied text. */
  #scrubber(secrets: string[]): (text: string) => string {
    const all = [...this.#secrets, ...secrets].filter((s) => s.length >= 4);
    return (text) => {
      let out = scrubUrls(text);
      for (const s of all) out = out.split(s).join('[redacted]');
      return out;
    };
  }

  /** Sends with a timeout and bounded retries; returns the first response that is not 5xx/429. */
  async #send(
    as: oauth.AuthorizationServer,
    grant: Grant,
    secrets: string[],
    guard: SendGuard | undefined,
    send: (o: oauth.TokenEndpointRequestOptions) => Promise<Response>,
    dpop?: DpopSigner,
  ): Promise<Response> {
    const { attempts, baseDelayMs, maxDelayMs, timeoutMs } = this.#retry;
    const what = grant.kind === 'refresh_token' ? 'refresh_token' : grant.name;
    const rotates = grant.kind === 'refresh_token';
    const scrub = this.#scrubber(secrets);
    const url = endpointUrl(as, what);
    for (let attempt = 1; ; attempt++) {
      let response: Response | undefined;
      let failure: unknown;
      await guard?.();
      const o = this.#requestOptions(timeoutMs);
      // A new proof for every attempt: its jti is single use, and it carries the latest nonce.
      if (dpop !== undefined) o.headers = { dpop: await dpop.proof('POST', url) };
      try {
        response = await this.#traced(what, url, attempt, () => send(o));
        if (dpop !== undefined) dpop.learn(response, url);
      } catch (error) {
        failure = error;
      }
      if (response !== undefined && response.status < 500 && response.status !== 429) return response;
      // A refresh is sent again only when the server surely did not process it: refused before
      // connecting, or answered 429/503 (RFC 9110: not processed). A 500, 502 or 504 may come
      // after the server rotated the token (a gateway timing out on it, for one).
      const notProcessed =
        response === undefined ? surelyNotSent(failure) : response.status === 429 || response.status === 503;
      const retryable = !(rotates || (grant.kind === 'other' && grant.once)) || notProcessed;
      if (!retryable || attempt >= attempts) {
        const tries = `after ${attempt} ${attempt === 1 ? 'try' : 'tries'}`;
        const unknown = rotates && !notProcessed;
        if (response !== undefined) {
          await response.body?.cancel().catch(() => {});
          throw new TokenEndpointError(
            'TOKENKEEPER_TOKEN_ENDPOINT',
            `The ${what} request to ${endpointOf(as, what)} failed with HTTP ${response.status} ${tries}${
              unknown ? '; not retried, since the server may have processed it' : ''
            }. The stored session is unchanged; try again later.`,
            { status: response.status, outcomeUnknown: unknown },
          );
        }
        const reason = scrub(networkReason(failure));
        throw new TokenEndpointError(
          'TOKENKEEPER_TOKEN_ENDPOINT',
          `The ${what} request to ${endpointOf(as, what)} failed (${reason}) ${tries}${
            retryable ? '' : '; not retried, since the server may have processed it'
          }. The stored session is unchanged.`,
          { cause: redactedCause(failure, reason), outcomeUnknown: unknown },
        );
      }
      const retryAfter = Number(response?.headers.get('retry-after'));
      const backoff = Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
      await response?.body?.cancel().catch(() => {});
      await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, maxDelayMs) : backoff);
    }
  }

  /** One request, in a span when the manager is instrumented (endpoint origin and path only). */
  #traced(what: string, url: string, attempt: number, send: () => Promise<Response>): Promise<Response> {
    const instrumentation = this.#instrumentation;
    if (instrumentation === undefined) return send();
    const u = new URL(url);
    const attributes = {
      'tokenkeeper.request': what,
      'server.address': u.host,
      'url.path': u.pathname,
      'tokenkeeper.attempt': attempt,
    };
    return instrumentation.span('tokenkeeper.token_request', attributes, async (set) => {
      const response = await send();
      set('http.response.status_code', response.status);
      return response;
    });
  }

  #requestOptions(timeoutMs: number): oauth.TokenEndpointRequestOptions {
    const o: oauth.TokenEndpointRequestOptions = { signal: AbortSignal.timeout(timeoutMs) };
    if (this.#insecureAllowed()) o[oauth.allowInsecureRequests] = true;
    if (this.#endpoints.fetch) o[oauth.customFetch] = this.#endpoints.fetch;
    return o;
  }

  #insecureAllowed(): boolean {
    const e = this.#endpoints;
    return (
      e.allowInsecureHttp === true ||
      [e.issuer, e.tokenEndpoint, e.revocationEndpoint].some((u) => u?.startsWith('http:'))
    );
  }

  async #resolve(): Promise<oauth.AuthorizationServer> {
    const e = this.#endpoints;
    if (e.tokenEndpoint !== undefined) {
      return {
        issuer: e.issuer ?? new URL(e.tokenEndpoint).origin,
        token_endpoint: e.tokenEndpoint,
        ...given(e),
      };
    }
    // Discovery loads on first use: apps that name their endpoints never ship it.
    const { discover } = await import('./discovery.js');
    return { ...(await discover(e, this.#retry.timeoutMs, this.#insecureAllowed())), ...given(e) };
  }
}

/** The endpoint a request named `what` goes to. */
function endpointUrl(as: oauth.AuthorizationServer, what: string): string {
  return (
    (what === 'revocation'
      ? as.revocation_endpoint
      : what === 'device_authorization'
        ? as.device_authorization_endpoint
        : as.token_endpoint) ?? as.issuer
  );
}

function endpointOf(as: oauth.AuthorizationServer, what: string): string {
  try {
    const u = new URL(endpointUrl(as, what));
    return `${u.origin}${u.pathname}`; // never the query string
  } catch {
    return 'the endpoint';
  }
}

/** The endpoints given as options, which win over discovered ones. */
function given(e: EndpointOptions): Partial<oauth.AuthorizationServer> {
  const out: { -readonly [K in keyof oauth.AuthorizationServer]?: oauth.AuthorizationServer[K] } = {};
  if (e.revocationEndpoint !== undefined) out.revocation_endpoint = e.revocationEndpoint;
  if (e.jwksUri !== undefined) out.jwks_uri = e.jwksUri;
  if (e.authorizationEndpoint !== undefined) out.authorization_endpoint = e.authorizationEndpoint;
  if (e.deviceAuthorizationEndpoint !== undefined) out.device_authorization_endpoint = e.deviceAuthorizationEndpoint;
  if (e.pushedAuthorizationRequestEndpoint !== undefined) {
    out.pushed_authorization_request_endpoint = e.pushedAuthorizationRequestEndpoint;
  }
  return out;
}

export function needEndpoint(url: string | undefined, what: string, option: string): string {
  if (url === undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `The server has no ${what} endpoint in its metadata: give it as the ${option} option.`,
    );
  }
  return url;
}

/** A failed check of the authorization response, or the server's error answer, as a typed error. */
export function authorizationResponseError(error: unknown): TokenkeeperError {
  if (error instanceof oauth.AuthorizationResponseError) {
    const code = scrubUrls(String(error.error)).slice(0, 100);
    const description = error.error_description ? `: ${scrubUrls(error.error_description).slice(0, 200)}` : '';
    const [typed, advice] = OAUTH_ERRORS[error.error] ?? [
      'TOKENKEEPER_AUTHORIZATION_RESPONSE',
      'Start the login again.',
    ];
    return new TokenEndpointError(
      typed === 'TOKENKEEPER_TOKEN_ENDPOINT' ? 'TOKENKEEPER_AUTHORIZATION_RESPONSE' : typed,
      `The authorization server answered the login with ${code}${description}. ${advice}`,
      { oauthError: code },
    );
  }
  const e = error as { message?: string };
  return new TokenkeeperError(
    'TOKENKEEPER_AUTHORIZATION_RESPONSE',
    `The login callback was refused: ${scrubUrls(String(e.message ?? error)).slice(0, 200)}. ` +
      'A callback must come from the server the login started at, with the parameters it sent; start the login again.',
  );
}

function isIdTokenError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    error instanceof oauth.OperationProcessingError &&
    (/^JWT_/.test(String(e.code)) || /ID Token|id_token|\bJWT\b/.test(String(e.message)))
  );
}

export function idTokenError(error: unknown): TokenkeeperError {
  if (error instanceof TokenkeeperError) return error;
  const e = error as { message?: string; cause?: { message?: string } };
  return new TokenkeeperError(
    'TOKENKEEPER_ID_TOKEN',
    `The ID token of the login is not valid (${scrubUrls(String(e.message ?? error)).slice(0, 200)}); nothing was stored. ` +
      'Start the login again; if it persists, check the issuer and client settings.',
  );
}

/** Connection refused or host unknown: the request never reached a server. */
function surelyNotSent(error: unknown): boolean {
  const code = (error as { cause?: { code?: string } })?.cause?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

export function networkReason(error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timed out';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
}

/**
 * `error` from processing a token or revocation response, as a typed error. Everything the server
 * wrote is passed through `scrub` (a server may echo the token it was sent), and only then cut.
 */
function endpointError(
  error: unknown,
  what: string,
  status: number,
  scrub: (text: string) => string,
  rotated = false,
): TokenkeeperError {
  if (error instanceof TokenkeeperError) return error;
  if (error instanceof oauth.ResponseBodyError) {
    const code = scrub(String(error.error)).slice(0, 100);
    const description = error.error_description ? `: ${scrub(error.error_description).slice(0, 200)}` : '';
    const invalidGrant = error.error === 'invalid_grant';
    return new TokenEndpointError(
      invalidGrant ? 'TOKENKEEPER_INVALID_GRANT' : 'TOKENKEEPER_TOKEN_ENDPOINT',
      `The server refused the ${what} request with ${code} (HTTP ${status})${description}.${
        invalidGrant ? ' The grant is no longer valid: log in again.' : ''
      }`,
      { oauthError: code, status },
    );
  }
  const e = error as { code?: string; message?: string };
  return new TokenEndpointError(
    'TOKENKEEPER_TOKEN_ENDPOINT',
    `The ${what} response (HTTP ${status}) is not one tokenkeeper can use (${e.code ?? 'error'}: ${scrub(
      String(e.message ?? error),
    ).slice(0, 200)}).`,
    // A 200 we could not read to a refresh: the server rotated, and the new tokens are lost.
    { status, outcomeUnknown: rotated },
  );
}

const INVALID_CLIENT_ADVICE =
  'The server did not accept the client: check client.clientId, client.clientSecret and client.authMethod. ' +
  'If they are right, try the other way of sending the secret (authMethod client_secret_post instead of ' +
  'client_secret_basic, or the reverse): servers differ in which they accept.';

/**
 * What each OAuth error a token or revocation endpoint can return (RFC 6749 §5.2, RFC 7009 §2.2.1,
 * RFC 8628 §3.5, RFC 9449 §5.2/§8) becomes, and what the user should do about it.
 */
const OAUTH_ERRORS: Record<string, [ErrorCode, string]> = {
  invalid_grant: ['TOKENKEEPER_INVALID_GRANT', 'The grant is no longer valid: log in again.'],
  expired_token: ['TOKENKEEPER_INVALID_GRANT', 'The device code expired: start the login again.'],
  invalid_client: ['TOKENKEEPER_INVALID_CLIENT', INVALID_CLIENT_ADVICE],
  unauthorized_client: [
    'TOKENKEEPER_INVALID_CLIENT',
    'This client may not use this grant: allow it in the client registration at the server.',
  ],
  invalid_scope: [
    'TOKENKEEPER_INVALID_SCOPE',
    'Ask only for scopes the client is registered for (a refresh token needs offline_access on most servers).',
  ],
  access_denied: ['TOKENKEEPER_ACCESS_DENIED', 'The user or the server refused the request.'],
  invalid_request: [
    'TOKENKEEPER_INVALID_REQUEST',
    'The request is missing or repeats a parameter the server needs: check the grant parameters.',
  ],
  unsupported_grant_type: [
    'TOKENKEEPER_INVALID_REQUEST',
    'The server does not support this grant: enable it at the server, or use another grant.',
  ],
  unsupported_token_type: ['TOKENKEEPER_INVALID_REQUEST', 'The server cannot revoke this kind of token.'],
  authorization_pending: [
    'TOKENKEEPER_AUTHORIZATION_PENDING',
    'The user has not finished the login yet: poll again later.',
  ],
  slow_down: ['TOKENKEEPER_AUTHORIZATION_PENDING', 'Polling too fast: wait 5 s longer between polls.'],
  invalid_dpop_proof: ['TOKENKEEPER_DPOP', 'The server refused the DPoP proof.'],
  use_dpop_nonce: ['TOKENKEEPER_DPOP', 'The server wants a DPoP nonce in the proof: send it again with the nonce.'],
  server_error: ['TOKENKEEPER_TOKEN_ENDPOINT', 'The server failed: try again later.'],
  temporarily_unavailable: ['TOKENKEEPER_TOKEN_ENDPOINT', 'The server is busy: try again later.'],
};

/**
 * The typed error for an error answer (HTTP 4xx/5xx) of a token or revocation endpoint: the
 * OAuth `error` from its JSON body, or for a 401 from its `WWW-Authenticate` challenge, with the
 * server's `error_description` (scrubbed of secrets).
 */
async function errorResponse(
  response: Response,
  what: string,
  scrub: (text: string) => string,
): Promise<TokenEndpointError> {
  const text = await response.text().catch(() => '');
  const body = (() => {
    try {
      return JSON.parse(text) as { error?: unknown; error_description?: unknown };
    } catch {
      return undefined;
    }
  })();
  const challenge = /error="([^"]+)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1];
  const status = response.status;
  const error = typeof body?.error === 'string' ? body.error : challenge;
  const html = /html/i.test(response.headers.get('content-type') ?? '') || /^\s*<(!doctype|html)/i.test(text);
  if (error === undefined || html || status === 404 || status === 405) return bareRefusal(status, what, html);
  const shown = scrub(error).slice(0, 100);
  const [code, advice] = OAUTH_ERRORS[error] ?? ['TOKENKEEPER_TOKEN_ENDPOINT', 'The server refused the request.'];
  const description =
    typeof body?.error_description === 'string' ? `: ${scrub(body.error_description).slice(0, 200)}` : '';
  return new TokenEndpointError(
    code,
    `The server refused the ${what} request with ${shown} (HTTP ${status})${description}. ${advice}`,
    {
      oauthError: shown,
      status,
    },
  );
}

/**
 * An error answer without an OAuth error code, which servers in the wild send (Glewlwyd answers a
 * revoked or replayed refresh token with a bare 400, and bad client credentials with a bare 403):
 * - to a refresh, a 400 or 401 is the server refusing the refresh token: `TOKENKEEPER_INVALID_GRANT`
 *   (no `oauthError`), so the session needs a new login and that token is never sent again;
 * - a 401 or 403 to any other request, and a 403 to a refresh, is the client refused
 *   (`TOKENKEEPER_INVALID_CLIENT`): the refresh token was not looked at, so the session is kept;
 * - a 404, a 405 or an HTML page is most likely the wrong URL; anything else, a refusal without a reason.
 */
function bareRefusal(status: number, what: string, html: boolean): TokenEndpointError {
  if (what === 'refresh_token' && (status === 400 || status === 401) && !html) {
    return new TokenEndpointError(
      'TOKENKEEPER_INVALID_GRANT',
      `The server refused the refresh token (HTTP ${status}, no error code). The grant is no longer valid: log in again.`,
      { status },
    );
  }
  if ((status === 401 || status === 403) && !html) {
    return new TokenEndpointError(
      'TOKENKEEPER_INVALID_CLIENT',
      `The server refused the client for the ${what} request (HTTP ${status}, no error code). ${INVALID_CLIENT_ADVICE}`,
      { status },
    );
  }
  if (status === 404 || status === 405 || html) {
    // Not an OAuth answer: most likely not the token endpoint at all.
    return new TokenEndpointError(
      'TOKENKEEPER_TOKEN_ENDPOINT',
      `The ${what} request failed with HTTP ${status}${html ? ' and an HTML page' : ''}, not an OAuth answer. Check the endpoint URL.`,
      { status },
    );
  }
  return new TokenEndpointError(
    'TOKENKEEPER_TOKEN_ENDPOINT',
    `The server refused the ${what} request (HTTP ${status}, no error code).`,
    { status },
  );
}

/** Shows URLs in a text as origin and path only: a query or user info can carry secrets. */
export function scrubUrls(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (match) => {
    try {
      const u = new URL(match);
      return `${u.protocol}//${u.host}${u.pathname}`;
    } catch {
      return '[url]';
    }
  });
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      `${name} must be a positive number, got ${String(value)}.`,
    );
  }
  return value;
}

/**
 * The client authentication of `client`, checked now (bad options throw at construction). The
 * JWT methods load their signer on first use (`client-assertion.ts`); a private JWK that cannot
 * be imported rejects the first request.
 */
function clientAuth(client: ClientOptions): Promise<oauth.ClientAuth> {
  const { clientSecret: secret, privateKey } = client;
  const fail = (why: string): never => {
    throw new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', `client.${why}.`);
  };
  const method =
    client.authMethod ?? (privateKey !== undefined ? 'private_key_jwt' : secret ? 'client_secret_basic' : 'none');
  if (method === 'private_key_jwt') {
    const isKey = typeof CryptoKey !== 'undefined' && privateKey instanceof CryptoKey;
    if (isKey ? privateKey.type !== 'private' : typeof (privateKey as JsonWebKey | undefined)?.d !== 'string') {
      fail('authMethod private_key_jwt needs client.privateKey: a private CryptoKey or a private JWK (with "d")');
    }
    if (client.keyId !== undefined && typeof client.keyId !== 'string') fail('keyId must be a string');
    const kid = client.keyId ?? (isKey ? undefined : (privateKey as { kid?: string }).kid);
    const auth = import('./client-assertion.js').then((m) =>
      m.privateKeyJwt(privateKey as CryptoKey | JsonWebKey, kid),
    );
    auth.catch(() => {}); // reported by the request that awaits it
    return auth;
  }
  if (privateKey !== undefined) fail(`privateKey is only used with authMethod private_key_jwt, not ${method}`);
  if (method !== 'none' && !secret) fail(`authMethod ${method} needs a clientSecret`);
  const s = secret as string;
  if (method === 'client_secret_jwt') return import('./client-assertion.js').then((m) => m.clientSecretJwt(s));
  return Promise.resolve(
    method === 'client_secret_basic'
      ? clientSecretBasic(s)
      : method === 'client_secret_post'
        ? oauth.ClientSecretPost(s)
        : method === 'none'
          ? oauth.None()
          : fail(
              `authMethod must be client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none, got ${String(method)}`,
            ),
  );
}

/**
 * HTTP Basic client authentication (RFC 6749 §2.3.1) that servers which do not form-decode the
 * credentials accept too: only what is not an unreserved character (RFC 3986 §2.3: letters,
 * digits, `-._~`) is percent-encoded, so a client id such as `tk-conf` or a base64url secret goes
 * as it is, and a server that form-decodes, as the RFC asks, reads the same credentials.
 * (oauth4webapi also encodes `-_.!~*'()`, which Glewlwyd, for one, does not decode.)
 */
function clientSecretBasic(secret: string): oauth.ClientAuth {
  return (_as, client, _body, headers) => {
    headers.set('authorization', `Basic ${btoa(`${basicEncode(client.client_id)}:${basicEncode(secret)}`)}`);
  };
}

/** Percent-encodes all but RFC 3986's unreserved characters (UTF-8 first, so `btoa` sees ASCII only). */
export function basicEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
