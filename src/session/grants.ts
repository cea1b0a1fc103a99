import { TokenkeeperError } from '../errors.js';
import type { TokenSet } from '../token/token-set.js';
import type { DeviceCodeGrant } from './login/device.js';
import type { RenewBy } from './record.js';

/** The token exchange grant (RFC 8693): trade a token of one kind (or audience) for another. */
export interface TokenExchangeGrant {
  grant: 'token_exchange';
  /** The token to exchange (sent as `subject_token`). */
  subjectToken: string;
  /** Its type, such as `urn:ietf:params:oauth:token-type:access_token` or `...:jwt`. */
  subjectTokenType: string;
  /** The service the new token is for (logical name). */
  audience?: string;
  /** The service the new token is for (URL). */
  resource?: string;
  /** The type of token wanted (default: the server's choice, usually an access token). */
  requestedTokenType?: string;
  /** The party acting on the subject's behalf, and its token type (delegation). */
  actorToken?: string;
  actorTokenType?: string;
  scope?: string;
}

/** The token exchange parameters (RFC 8693 §2.1) of a grant. */
export function exchangeParameters(g: TokenExchangeGrant): Record<string, string> {
  const out: Record<string, string> = { subject_token: g.subjectToken, subject_token_type: g.subjectTokenType };
  const optional = {
    audience: g.audience,
    resource: g.resource,
    requested_token_type: g.requestedTokenType,
    actor_token: g.actorToken,
    actor_token_type: g.actorTokenType,
    scope: g.scope,
  };
  for (const [name, value] of Object.entries(optional)) if (value !== undefined) out[name] = value;
  return out;
}

/** A grant to log in with. */
export type LoginGrant =
  | { grant: 'client_credentials'; scope?: string }
  | { grant: 'password'; username: string; password: string; scope?: string }
  | { grant: 'authorization_code'; code: string; redirectUri: string; codeVerifier?: string }
  | { grant: 'refresh_token'; refreshToken: string; scope?: string }
  | DeviceCodeGrant
  | TokenExchangeGrant;

/** How a session made by `grant` renews: by its refresh token, by client credentials, or not at all. */
export function renewByOf(grant: string, tokens: TokenSet): RenewBy {
  if (tokens.refreshToken) return 'refresh_token';
  return grant === 'client_credentials' ? 'client_credentials' : 'none';
}

/** Checks a login grant's shape before anything is sent. */
export function checkGrant(grant: LoginGrant): void {
  const fail = (why: string) => new TokenkeeperError('TOKENKEEPER_INVALID_ARGUMENT', `login(): ${why}.`);
  if (typeof grant !== 'object' || grant === null) throw fail('the first argument must be { grant: ... }');
  const g = grant as Record<string, unknown>;
  const need = (...fields: string[]) => {
    for (const f of fields) {
      if (typeof g[f] !== 'string' || (g[f] as string).length === 0) throw fail(`the ${g.grant} grant needs ${f}`);
    }
  };
  for (const f of [
    'scope',
    'codeVerifier',
    'audience',
    'resource',
    'requestedTokenType',
    'actorToken',
    'actorTokenType',
  ]) {
    if (g[f] !== undefined && typeof g[f] !== 'string') throw fail(`${f} must be a string`);
  }
  switch (g.grant) {
    case 'client_credentials':
      return;
    case 'password':
      need('username', 'password');
      return;
    case 'authorization_code':
      need('code', 'redirectUri');
      return;
    case 'refresh_token':
      need('refreshToken');
      return;
    case 'device_code':
      if (typeof g.onPrompt !== 'function')
        throw fail('the device_code grant needs onPrompt, a function that shows the user code');
      if (g.signal !== undefined && !(g.signal instanceof AbortSignal)) throw fail('signal must be an AbortSignal');
      return;
    case 'token_exchange':
      need('subjectToken', 'subjectTokenType');
      if ((g.actorToken === undefined) !== (g.actorTokenType === undefined)) {
        throw fail('actorToken and actorTokenType go together');
      }
      return;
    default:
      throw fail(
        `unknown grant ${JSON.stringify(String(g.grant))}; use client_credentials, password, authorization_code, refresh_token, device_code or token_exchange`,
      );
  }
}
