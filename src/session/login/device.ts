import * as oauth from 'oauth4webapi';
import { isTokenkeeperError, TokenkeeperError } from '../../errors.js';
import { sleep } from '../../store/kit/records.js';
import type { DpopSigner } from '../dpop-options.js';
import { isLoopbackHost, type OAuthClient, type Obtained, type TokenEndpointError } from '../oauth.js';

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
export async function deviceLogin(client: OAuthClient, grant: DeviceCodeGrant, dpop?: DpopSigner): Promise<Obtained> {
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
    verificationUri: pageUrl('verification_uri', started.verification_uri),
    expiresAt: new Date(expiresAt),
  };
  if (started.verification_uri_complete !== undefined) {
    prompt.verificationUriComplete = pageUrl('verification_uri_complete', started.verification_uri_complete);
  }
  await grant.onPrompt(prompt);
  for (;;) {
    // The code ends at expires_in: no poll is sent after it, whatever the server would answer.
    if (Date.now() + intervalMs >= expiresAt) {
      await wait(Math.max(0, expiresAt - Date.now()), signal);
      throw expired();
    }
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
    }
  }
}

function expired(): TokenkeeperError {
  return new TokenkeeperError(
    'TOKENKEEPER_INVALID_GRANT',
    'The device code expired before the user approved the login (its expires_in passed): start the login again.',
  );
}

/**
 * A page the user is sent to: `https:`, or `http:` on loopback (a local test server). Anything else
 * (`javascript:`, `data:`, plain http to another host) is refused before the user sees it.
 */
function pageUrl(name: string, value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {}
  if (url?.protocol === 'https:' || (url?.protocol === 'http:' && isLoopbackHost(url.hostname))) return value;
  throw new TokenkeeperError(
    'TOKENKEEPER_INVALID_TOKEN_RESPONSE',
    `The device authorization response's ${name} is not an https URL (${url === undefined ? 'not a URL' : url.protocol}); nothing is shown to the user. Check the server's device flow settings.`,
  );
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
