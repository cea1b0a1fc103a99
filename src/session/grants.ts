import { TokenkeeperError } from '../errors.js';
import type { TokenSet } from '../token/token-set.js';
import type { RenewBy } from './record.js';

/** A grant to log in with. */
export type LoginGrant =
  | { grant: 'client_credentials'; scope?: string }
  | { grant: 'password'; username: string; password: string; scope?: string }
  | { grant: 'authorization_code'; code: string; redirectUri: string; codeVerifier?: string }
  | { grant: 'refresh_token'; refreshToken: string; scope?: string };

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
  for (const f of ['scope', 'codeVerifier']) {
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
    default:
      throw fail(
        `unknown grant ${JSON.stringify(String(g.grant))}; use client_credentials, password, authorization_code or refresh_token`,
      );
  }
}
