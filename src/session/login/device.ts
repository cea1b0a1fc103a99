import * as oauth from 'oauth4webapi';
import { isTokenkeeperError, TokenkeeperError } from '../../errors.js';
import { sleep } from '../../store/kit/records.js';
import type { TokenSet } from '../../token/token-set.js';
import type { DpopSigner } from '../dpop-options.js';
import type { OAuthClient, TokenEndpointError } from '../oauth.js';

/**
 * The device authorization grant (RFC 8628) for CLIs, TVs and headless servers: ask for a user
 * code, show it once, then poll the token endpoint as the server asks until the user approves,
 * refuses, or the code expires.
 */

/** What to show the user: where to go, and the code to enter there. */
export interface DevicePrompt {
  userCode: string;
  verificationUri: string;
  /** The same page with the code filled in (for a QR code or a link), when the server offers one. */
  verificationUriComplete?: string;
  /** When the code expires. */
  expiresAt: Date;
}

export interface DeviceCodeGrant {
  grant: 'device_code';
  scope?: string;
  /** Called once with the code to show; the polling starts when it returns (or resolves). */
  onPrompt: (prompt: DevicePrompt) => void | Promise<void>;
  /** Stops the polling: the login then rejects with `TOKENKEEPER_LOGIN_ABORTED`. */
  signal?: AbortSignal;
}

/** The interval RFC 8628 §3.2 prescribes when the server names none, and the `slow_down` step. */
const DEFAULT_INTERVAL_S = 5;
const SLOW_DOWN_S = 5;

/** Loaded by the manager on first use: apps that never log in this way do not ship it. */
export async function deviceLogin(client: OAuthClient, grant: DeviceCodeGrant, dpop?: DpopSigner): Promise<TokenSet> {
  const { signal, scope } = grant;
  aborted(signal);
  if ((await client.server()).device_authorization_endpoint === undefined) {
    throw new TokenkeeperError(
      'TOKENKEEPER_INVALID_ARGUMENT',
      'The server has no device authorization endpoint in its metadata: give it as the deviceAuthorizationEndpoint option.',
    );
  }
  const started = await client.endpoint(
    'device_authorization',
    (as, o, auth) => oauth.deviceAuthorizationRequest(as, client.client, auth, scope ? { scope } : {}, o),
    (as, response) => oauth.processDeviceAuthorizationResponse(as, client.client, response),
  );
  const expiresAt = Date.now() + started.expires_in * 1000;
  let intervalMs = (started.interval ?? DEFAULT_INTERVAL_S) * 1000;
  const prompt: DevicePrompt = {
    userCode: started.user_code,
    verificationUri: started.verification_uri,
    expiresAt: new Date(expiresAt),
  };
  if (started.verification_uri_complete !== undefined) {
    prompt.verificationUriComplete = started.verification_uri_complete;
  }
  await grant.onPrompt(prompt);
  for (;;) {
    await wait(intervalMs, signal);
    try {
      return await client.grant(
        'device_code',
        [started.device_code],
        (as, o, auth) => oauth.deviceCodeGrantRequest(as, client.client, auth, started.device_code, o),
        (as, response) => oauth.processDeviceCodeResponse(as, client.client, response),
        dpop,
      );
    } catch (error) {
      if (!isTokenkeeperError(error, 'TOKENKEEPER_AUTHORIZATION_PENDING')) throw error;
      if ((error as TokenEndpointError).oauthError === 'slow_down') intervalMs += SLOW_DOWN_S * 1000;
      // A server that never says expired_token must not keep us polling forever.
      if (Date.now() >= expiresAt + intervalMs) {
        throw new TokenkeeperError(
          'TOKENKEEPER_INVALID_GRANT',
          'The device code expired before the user approved the login: start the login again.',
        );
      }
    }
  }
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new TokenkeeperError('TOKENKEEPER_LOGIN_ABORTED', 'The device login was aborted before it finished.', {
      cause: signal.reason,
    });
  }
}

/** The store kit's abortable sleep; an abort becomes `TOKENKEEPER_LOGIN_ABORTED`. */
async function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  aborted(signal);
  await sleep(ms, signal).catch(() => aborted(signal));
}
