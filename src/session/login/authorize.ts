import * as oauth from 'oauth4webapi';
import { isTokenkeeperError, TokenkeeperError } from '../../errors.js';
import type { Store, StoreRecord } from '../../store/types.js';
import type { TokenSet } from '../../token/token-set.js';
import type { DpopRecord, DpopSigner } from '../dpop-options.js';
import type { OAuthClient } from '../oauth.js';
import { authorizationUrl, codeCallback } from './code-flow.js';

/**
 * The authorization code flow with PKCE in two calls (RFC 6749 §4.1, RFC 7636, RFC 9207,
 * OpenID Connect Core §3.1): `authorize()` builds the URL and keeps the pending login in the
 * manager's store, `callback()` consumes it exactly once, on any process or machine sharing the
 * store, and completes the login.
 */

export interface AuthorizeOptions {
  /** Where the server sends the user back: exactly as registered for the client. */
  redirectUri: string;
  /** The scope to ask for. With `openid` in it, a nonce is sent and an ID token required. */
  scope?: string;
  /**
   * The id to store the session under. Default: the ID token's `sub` (which needs the `openid`
   * scope), or the `sessionId` given to `callback()`.
   */
  sessionId?: string;
  /** `login`, `consent`, `select_account` or `none` (OpenID Connect). */
  prompt?: string;
  /** A hint of who logs in (an e-mail address, a user name), sent as `login_hint`. */
  loginHint?: string;
  /**
   * Further authorization request parameters (`audience`, `resource`, `acr_values`, ...). The
   * ones tokenkeeper sets itself (`state`, `nonce`, PKCE, `redirect_uri`, ...) cannot be given.
   */
  extra?: Record<string, string>;
  /**
   * Pushed authorization requests (RFC 9126): the parameters go to the server's PAR endpoint,
   * authenticated as the client, and the URL carries only `client_id` and the `request_uri` it
   * answers, so nothing of the request can be read or changed in the browser. Default: used when
   * the server's metadata requires it (`require_pushed_authorization_requests`). `true` always
   * (an error when the server has no PAR endpoint), `false` never.
   */
  par?: boolean;
}

export interface AuthorizeResult {
  /** Send the user here (a redirect, `location.assign`, or the system browser). */
  url: string;
  /** The login's `state`: the callback must carry it back. */
  state: string;
}

/** A callback URL (absolute, or a path with its query), its parameters, or the `Request` itself. */
export type CallbackInput = string | URL | URLSearchParams | Request;

export interface CallbackOptions {
  /** The id to store the session under, over the one given to `authorize()` and the ID token's `sub`. */
  sessionId?: string;
  /** Overwrite a stored session of another server or client under this id (see `login`). */
  replace?: boolean;
  /** This session's absolute lifetime (default: the manager's `sessionTtlMs`). */
  sessionTtlMs?: number;
  /** This session's idle lifetime (default: the manager's `idleTtlMs`). */
  idleTtlMs?: number;
}

/** What the login flows need of the manager: its store, its OAuth client and its keys. */
export interface LoginContext {
  store: Store;
  oauth: OAuthClient;
  /** The store key of a pending login. */
  pendingKey(state: string): string;
  /** Throws `TOKENKEEPER_INVALID_KEY` for a session id the manager cannot store. */
  checkSessionId(sessionId: string): void;
  /** How long a pending login waits for its callback. */
  pendingTtlMs: number;
}

/** Parameters tokenkeeper sets itself; `extra` cannot override them. */
const RESERVED = new Set([
  'client_id',
  'response_type',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'prompt',
  'login_hint',
  'dpop_jkt',
]);

/** A pending login as stored (`login/1`). */
interface Pending {
  verifier: string;
  redirectUri: string;
  expiresAt: number;
  nonce?: string;
  sessionId?: string;
  scope?: string;
  /** The DPoP key the code is bound to (`dpop_jkt`), kept as a session record keeps it. */
  dpop?: DpopRecord;
}

/**
 * Builds the authorization URL and keeps the pending login. With DPoP, `newKey` makes the new
 * session's key once the options are checked, and the URL carries its `dpop_jkt` (RFC 9449 §10):
 * the server binds the code to that key, so only a proof signed with it can redeem the code.
 */
export async function startAuthorization(
  ctx: LoginContext,
  options: AuthorizeOptions,
  newKey?: () => Promise<DpopRecord | undefined>,
): Promise<AuthorizeResult> {
  const fail = (why: string) => new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', `authorize(): ${why}.`);
  if (typeof options !== 'object' || options === null) throw fail('give { redirectUri, scope }');
  const { redirectUri, scope, sessionId, prompt, loginHint, extra = {}, par } = options;
  if (par !== undefined && typeof par !== 'boolean') throw fail('par must be true or false');
  try {
    new URL(redirectUri);
  } catch {
    throw fail('redirectUri must be an absolute URL, exactly as registered for the client');
  }
  for (const [name, value] of Object.entries({ scope, sessionId, prompt, loginHint })) {
    if (value !== undefined && (typeof value !== 'string' || value === ''))
      throw fail(`${name} must be a non-empty string`);
  }
  if (typeof extra !== 'object' || extra === null) throw fail('extra must be an object of strings');
  for (const [name, value] of Object.entries(extra)) {
    if (RESERVED.has(name)) throw fail(`extra cannot set ${name}: tokenkeeper sets it`);
    if (typeof value !== 'string') throw fail(`extra.${name} must be a string`);
  }
  if (sessionId !== undefined) ctx.checkSessionId(sessionId);
  const openid = scope?.split(' ').includes('openid') === true;
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const params: Record<string, string> = {
    ...extra,
    response_type: 'code',
    redirect_uri: redirectUri,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  };
  const pending: Pending = { verifier, redirectUri, expiresAt: Date.now() + ctx.pendingTtlMs };
  if (scope !== undefined) params.scope = pending.scope = scope;
  if (openid) params.nonce = pending.nonce = oauth.generateRandomNonce();
  if (prompt !== undefined) params.prompt = prompt;
  if (loginHint !== undefined) params.login_hint = loginHint;
  if (sessionId !== undefined) pending.sessionId = sessionId;
  const dpop = await newKey?.();
  if (dpop !== undefined) {
    params.dpop_jkt = dpop.jkt;
    pending.dpop = dpop;
  }
  const url = await authorizationUrl(ctx.oauth, params, par);
  await ctx.store.set(ctx.pendingKey(state), { tokenkeeper: 'login/1', ...pending } as unknown as StoreRecord, {
    ttlMs: ctx.pendingTtlMs,
  });
  return { url: url.href, state };
}

/**
 * Consumes the pending login named by the callback's `state` (once: a replay, on this process or
 * any other, is refused), then redeems the code and validates the ID token. `signerFor` gives the
 * DPoP signer of the key the login was started with (undefined without DPoP); the result says
 * which key that was.
 */
export async function completeAuthorization(
  ctx: LoginContext,
  input: CallbackInput,
  sessionId: string | undefined,
  signerFor: (
    rec: DpopRecord | undefined,
    login: { key: string; sessionId?: string },
  ) => Promise<{ signer: DpopSigner; record: DpopRecord } | undefined>,
): Promise<{
  tokens: TokenSet;
  claims?: Record<string, unknown>;
  sessionId?: string;
  scope?: string;
  dpop?: DpopRecord;
}> {
  const params = await callbackParameters(input);
  const state = params.get('state');
  if (state === null || state === '') {
    throw loginState(
      params.has('error')
        ? `carries the error ${JSON.stringify(params.get('error')?.slice(0, 100))} but no state, so it cannot be matched to a login`
        : 'has no state parameter, so it is not the answer to a login started here',
    );
  }
  if (!/^[\w-]{1,256}$/.test(state)) throw loginState('has a state that no login here started');
  const key = ctx.pendingKey(state);
  const entry = await ctx.store.get(key);
  const pending = entry === undefined ? undefined : decodePending(entry.value);
  if (entry === undefined || pending === undefined) {
    throw loginState('has a state that is unknown, expired (logins wait 10 minutes by default) or already used');
  }
  if (sessionId === undefined && pending.sessionId === undefined && pending.nonce === undefined) {
    // Checked before the login is used up, so the app can retry with a session id.
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      "callback(): no session id: give sessionId to authorize() or callback(), or ask for the openid scope to use the ID token's sub.",
    );
  }
  let consumed: boolean;
  try {
    consumed = await ctx.store.delete(key, { ifVersion: entry.version });
  } catch (error) {
    if (!isTokenkeeperError(error, 'TOKENKEEPER_VERSION_CONFLICT')) throw error;
    consumed = false;
  }
  if (!consumed) throw loginState('was already used: each login completes once');
  if (pending.expiresAt <= Date.now()) throw loginState('came after its login expired');
  const id = sessionId ?? pending.sessionId;
  const bound = await signerFor(pending.dpop, id === undefined ? { key } : { key, sessionId: id });
  const result = await codeCallback(
    ctx.oauth,
    params,
    {
      state,
      redirectUri: pending.redirectUri,
      codeVerifier: pending.verifier,
      ...(pending.nonce === undefined ? {} : { nonce: pending.nonce }),
    },
    bound?.signer,
  );
  return { ...result, sessionId: pending.sessionId, scope: pending.scope, dpop: bound?.record };
}

function loginState(why: string): TokenkeeperError {
  return new TokenkeeperError('TOKENKEEPER_LOGIN_STATE', `The login callback ${why}. Start the login again.`);
}

function decodePending(value: StoreRecord): Pending | undefined {
  const v = value as Record<string, unknown>;
  const optional = (f: string) => v[f] === undefined || typeof v[f] === 'string';
  const ok =
    v.tokenkeeper === 'login/1' &&
    typeof v.verifier === 'string' &&
    typeof v.redirectUri === 'string' &&
    typeof v.expiresAt === 'number' &&
    optional('nonce') &&
    optional('sessionId') &&
    optional('scope') &&
    (v.dpop === undefined || (typeof v.dpop === 'object' && v.dpop !== null));
  return ok ? (v as unknown as Pending) : undefined;
}

async function callbackParameters(input: CallbackInput): Promise<URLSearchParams> {
  if (input instanceof URLSearchParams) return input;
  if (input instanceof URL) return input.searchParams;
  if (typeof input === 'string') {
    if (input.startsWith('?')) return new URLSearchParams(input);
    try {
      return new URL(input, 'http://callback.invalid').searchParams;
    } catch {}
  } else if (typeof input === 'object' && input !== null && typeof input.url === 'string') {
    const request = input as Request;
    const type = request.headers?.get('content-type') ?? '';
    // response_mode=form_post: the parameters are in the body.
    if (request.method === 'POST' && type.startsWith('application/x-www-form-urlencoded')) {
      return new URLSearchParams(await request.text());
    }
    return new URL(request.url, 'http://callback.invalid').searchParams;
  }
  throw new TokenkeeperError(
    'TOKENKEEPER_INVALID_ARGUMENT',
    'callback(): give the callback URL, its URLSearchParams or the Request that arrived at the redirect URI.',
  );
}
