import type { OAuthClientProvider, OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { isTokenkeeperError, TokenkeeperError } from '../../errors.js';
import type { SessionManager } from '../../session/manager.js';
import type { Session } from '../../session/session.js';
import { answerInPlace, applyClientAuthentication } from './answer.js';
import { canonicalServerUrl, checkDiscovery, checkOptions, endsSession, sameIssuer, scopeOf } from './checks.js';
import { registerClient } from './registration.js';
import { serverKey, serverOptions } from './server.js';
import { type McpState, McpStateStore } from './state.js';

/**
 * The refresh token the SDK is given in place of the real one. The real one never leaves the
 * store: when the SDK posts this after a 401, the provider answers the request itself from a
 * renewal under the store's lock (see {@link McpProvider.addClientAuthentication}). Sent to a
 * server by mistake, it is an unknown token, not a replay: no token family is revoked.
 */
export const REFRESH_HANDLE = 'tokenkeeper:renewed-under-the-store-lock';

export interface McpAuthProviderOptions {
  /** The MCP server's URL, as given to the transport. */
  serverUrl: string | URL;
  /**
   * The id of the session in the manager's store (default `mcp:<server URL>`). Give one per user
   * when an app logs several users in to one server.
   */
  sessionId?: string;
  /**
   * The metadata registered by Dynamic Client Registration (RFC 7591), with OpenID Connect's
   * `application_type` (`native` lets a loopback redirect URI take any port on most servers).
   */
  clientMetadata: OAuthClientMetadata & { application_type?: string };
  /** The redirect URI of logins the SDK starts (default: the first of `clientMetadata.redirect_uris`). */
  redirectUrl?: string | URL;
  /**
   * Called with the authorization URL when the SDK needs a new login (no session, or one the
   * server no longer renews). Without it, such a call fails with `TOKENKEEPER_REAUTH_REQUIRED`:
   * log in with `provider.login()` (a loopback browser login or the device flow) instead.
   */
  onRedirect?: (authorizationUrl: URL) => void | Promise<void>;
  /** A Client ID Metadata Document URL (https), used as the client id where the server supports it. */
  clientMetadataUrl?: string;
  /** A client registered by hand: no registration happens. Add `issuer` to bind it to its server. */
  clientInformation?: OAuthClientInformationMixed;
  /**
   * `client_credentials` for a client that acts on its own behalf (no user, no redirect): tokens
   * come from the client credentials grant, once across processes. Give `clientInformation`.
   */
  grant?: 'authorization_code' | 'client_credentials';
  /** Allow `http://` registration endpoints on hosts other than loopback. Never in production. */
  allowInsecureHttp?: boolean;
}

/**
 * An `OAuthClientProvider` for the MCP TypeScript SDK that keeps everything in a tokenkeeper
 * store and renews once across processes. Tested with `@modelcontextprotocol/sdk` 1.32.2.
 */
export class McpProvider implements OAuthClientProvider {
  readonly #manager: SessionManager;
  readonly #options: McpAuthProviderOptions;
  readonly #serverUrl: string;
  readonly #sessionId: string;
  readonly #state: McpStateStore;
  /** What was last read or written; the store is read again when it lacks what is asked. */
  #cached: McpState | undefined;
  #server: { key: string; manager: SessionManager } | undefined;
  #session: Session | undefined;
  /** The access token `tokens()` handed out last. */
  #lastSent: string | undefined;
  /**
   * The token the SDK's current `auth()` is about: the one handed out before it started (its
   * first call is `discoveryState()`). `auth()` calls `tokens()` again, which may hand out a token
   * renewed meanwhile: that one was not refused, and must not be renewed again.
   */
  #rejected: string | undefined;
  /** A renewal that failed for a reason other than the session's end: `state()` rethrows it. */
  #failure: unknown;

  constructor(manager: SessionManager, options: McpAuthProviderOptions) {
    checkOptions(manager, options);
    this.#manager = manager;
    this.#options = options;
    this.#serverUrl = canonicalServerUrl(options.serverUrl);
    this.#sessionId = options.sessionId ?? `mcp:${this.#serverUrl}`;
    // The record of what the SDK keeps is encrypted for the MCP server (when the manager encrypts).
    const host = manager._forServer({}, `mcp ${this.#serverUrl}`);
    this.#state = new McpStateStore(host.store, `${manager.namespace}:mcp:${this.#sessionId}`, this.#serverUrl);
  }

  /** The session id the tokens are kept under (list and clear it like any other session). */
  get sessionId(): string {
    return this.#sessionId;
  }

  get redirectUrl(): string | URL | undefined {
    if (this.#options.grant === 'client_credentials') return undefined;
    return this.#options.redirectUrl ?? this.#options.clientMetadata.redirect_uris?.[0];
  }

  get clientMetadata(): OAuthClientMetadata {
    return this.#options.clientMetadata;
  }

  get clientMetadataUrl(): string | undefined {
    return this.#options.clientMetadataUrl;
  }

  // --- discovery -----------------------------------------------------------------------------

  async discoveryState(): Promise<OAuthDiscoveryState | undefined> {
    this.#rejected = this.#lastSent;
    return (await this.#read((s) => s.discovery !== undefined)).discovery;
  }

  async saveDiscoveryState(state: OAuthDiscoveryState): Promise<void> {
    checkDiscovery(this.#serverUrl, state);
    await this.#update((s) => {
      s.discovery = state;
      return true;
    });
  }

  // --- the client ----------------------------------------------------------------------------

  /**
   * The registered client. When none is stored yet and the server's metadata is known, registers
   * now, under the store's lock: processes starting together register once, and the registration
   * is kept for every later run. A Client ID Metadata Document URL is used where supported.
   */
  async clientInformation(): Promise<OAuthClientInformationMixed | undefined> {
    const given = this.#options.clientInformation;
    if (given !== undefined) return given;
    const state = await this.#read((s) => s.client !== undefined && s.discovery !== undefined);
    const discovery = state.discovery;
    if (state.client !== undefined && (discovery === undefined || sameIssuer(state.client.issuer, discovery))) {
      return state.client;
    }
    if (discovery === undefined || this.#options.grant === 'client_credentials') return undefined;
    const issuer = discovery.authorizationServerUrl;
    const out = await this.#update(async (s): Promise<OAuthClientInformationMixed> => {
      if (s.client !== undefined && sameIssuer(s.client.issuer, discovery)) return s.client; // another process registered
      const metadata = discovery.authorizationServerMetadata;
      const url = this.#options.clientMetadataUrl;
      if (url !== undefined && metadata?.client_id_metadata_document_supported === true) {
        s.client = { client_id: url, issuer };
        return s.client;
      }
      const endpoint =
        metadata?.registration_endpoint ??
        (metadata === undefined ? `${issuer.replace(/\/$/, '')}/register` : undefined);
      if (endpoint === undefined) {
        throw new TokenkeeperError(
          'TOKENKEEPER_INVALID_CLIENT',
          `The authorization server ${issuer} offers no dynamic client registration. Register a client there and give clientInformation.`,
        );
      }
      const scope = scopeOf(discovery, this.#options.clientMetadata);
      const registered = await registerClient(
        endpoint,
        { ...this.#options.clientMetadata, ...(scope === undefined ? {} : { scope }) },
        { allowInsecureHttp: this.#options.allowInsecureHttp },
      );
      s.client = { ...registered, issuer };
      return s.client;
    });
    return out === false ? undefined : (out as OAuthClientInformationMixed);
  }

  async saveClientInformation(info: OAuthClientInformationMixed): Promise<void> {
    if (this.#options.clientInformation !== undefined) return; // given by the app: nothing to keep
    await this.#update((s) => {
      s.client = info;
      return true;
    });
  }

  // --- tokens --------------------------------------------------------------------------------

  /**
   * The session's tokens, renewed ahead of expiry through tokenkeeper's engine (one refresh
   * across processes, under the store's lock). The refresh token handed to the SDK is a
   * stand-in: its refresh after a 401 is answered by {@link addClientAuthentication}.
   * `undefined` when there is no session, or it needs a new login.
   */
  async tokens(): Promise<OAuthTokens | undefined> {
    const session = await this.#currentSession();
    if (session === undefined) return undefined;
    let accessToken: string;
    try {
      accessToken = await session.getAccessToken();
    } catch (error) {
      if (endsSession(error)) {
        this.#session = undefined;
        return undefined;
      }
      throw error;
    }
    this.#lastSent = accessToken;
    return this.#sdkTokens(session, accessToken);
  }

  /**
   * Tokens from a request the SDK made itself (an authorization code it redeemed): stored as
   * the session. Tokens the provider answered with are already stored, and are not written again.
   */
  async saveTokens(tokens: OAuthTokens): Promise<void> {
    if (this.#session !== undefined && this.#session.tokens.accessToken === tokens.access_token) return;
    // Our own answer relayed back (the stand-in refresh token): what it came from is stored already.
    if (tokens.refresh_token === REFRESH_HANDLE) return;
    const { issuer: _issuer, ...response } = tokens as OAuthTokens & { issuer?: string };
    const server = await this.#serverManager(await this.#read(() => true));
    if (server === undefined) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_ARGUMENT',
        'The MCP SDK saved tokens before the server was discovered and the client registered: nothing was stored.',
      );
    }
    this.#session = await server.adopt(this.#sessionId, response, { replace: true });
    this.#failure = undefined;
  }

  /**
   * The SDK calls this just before each token request. A refresh with the stand-in refresh token
   * (its reaction to a 401) and a client credentials request are answered here, from the store:
   * the session is renewed under the store's lock (a token another process renewed meanwhile is
   * adopted, not renewed again) and the SDK reads the answer as the server's. Any other request
   * (an authorization code the SDK redeems) is authenticated as the SDK would, and sent.
   * A property, not a method: the SDK passes it around detached from the provider.
   */
  readonly addClientAuthentication = (
    headers: Headers,
    params: URLSearchParams,
    url: string | URL,
    metadata?: { token_endpoint_auth_methods_supported?: string[] },
  ): Promise<void> => this.#authenticate(headers, params, url, metadata);

  async #authenticate(
    headers: Headers,
    params: URLSearchParams,
    url: string | URL,
    metadata?: { token_endpoint_auth_methods_supported?: string[] },
  ): Promise<void> {
    const grant = params.get('grant_type');
    const mine =
      (grant === 'refresh_token' && params.get('refresh_token') === REFRESH_HANDLE) ||
      (grant === 'client_credentials' && this.#options.grant === 'client_credentials');
    if (!mine) {
      const client = await this.clientInformation();
      if (client !== undefined)
        applyClientAuthentication(client, metadata?.token_endpoint_auth_methods_supported, headers, params);
      return;
    }
    let answer: OAuthTokens;
    try {
      answer = grant === 'refresh_token' ? await this.#renewAfterRejection() : await this.#clientCredentials();
    } catch (error) {
      // The SDK turns a failed refresh into a new login: only a session's end should do that.
      if (!endsSession(error)) this.#failure = error;
      throw error;
    }
    answerInPlace(url, headers, params, answer);
  }

  /** Client credentials: the SDK's token request (no redirect URL) names this grant. */
  prepareTokenRequest(scope?: string): URLSearchParams | undefined {
    if (this.#options.grant !== 'client_credentials') return undefined;
    const params = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope) params.set('scope', scope);
    return params;
  }

  // --- logins the SDK starts -----------------------------------------------------------------

  /** Called by the SDK just before it starts a new login: a renewal that failed for a passing reason stops it. */
  async state(): Promise<string> {
    const failure = this.#failure;
    this.#failure = undefined;
    if (failure !== undefined) throw failure;
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async saveCodeVerifier(codeVerifier: string): Promise<void> {
    await this.#update((s) => {
      s.verifier = codeVerifier;
      return true;
    });
  }

  async codeVerifier(): Promise<string> {
    const verifier = (await this.#read((s) => s.verifier !== undefined)).verifier;
    if (verifier === undefined) {
      throw new TokenkeeperError(
        'TOKENKEEPER_LOGIN_STATE',
        'No login of this MCP server is in progress (no PKCE verifier is stored): start the login again.',
      );
    }
    return verifier;
  }

  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    if (this.#options.onRedirect !== undefined) {
      await this.#options.onRedirect(authorizationUrl);
      return;
    }
    throw new TokenkeeperError(
      'TOKENKEEPER_REAUTH_REQUIRED',
      `The MCP server ${this.#serverUrl} needs a login: call provider.login() (or give onRedirect), then connect again.`,
      { sessionId: this.#sessionId },
    );
  }

  /**
   * The SDK's reaction to a refused refresh, registration or code. Tokens are never deleted
   * here: another process may just have renewed them, and a session the server refuses to renew
   * is marked by the engine (then `tokens()` answers `undefined`, and a new login starts).
   */
  async invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): Promise<void> {
    if (scope === 'tokens') return;
    const known = this.#cached?.client?.client_id;
    await this.#update((s) => {
      // A client another process registered since we read is not the one the server refused.
      if ((scope === 'all' || scope === 'client') && s.client !== undefined && s.client.client_id === known) {
        s.client = undefined;
      }
      if (scope === 'all' || scope === 'discovery') s.discovery = undefined;
      if (scope === 'all' || scope === 'verifier') s.verifier = undefined;
      return true;
    });
    this.#server = undefined;
    this.#session = undefined;
  }

  // --- for login flows -----------------------------------------------------------------------

  /** @internal The stored state, with discovery and client completed (discovering and registering if needed). */
  async _prepare(): Promise<{ manager: SessionManager; state: McpState; scope?: string; resource?: string }> {
    let state = await this.#read((s) => s.discovery !== undefined);
    if (state.discovery === undefined) {
      const { discoverOAuthServerInfo } = await import('@modelcontextprotocol/sdk/client/auth.js');
      const info = await discoverOAuthServerInfo(this.#serverUrl).catch((error: unknown) => {
        throw new TokenkeeperError(
          'TOKENKEEPER_DISCOVERY_FAILED',
          `The MCP server ${this.#serverUrl} and its authorization server could not be discovered (${String((error as Error)?.message ?? error)}).`,
          { cause: error },
        );
      });
      await this.saveDiscoveryState(info);
    }
    if ((await this.clientInformation()) === undefined) {
      throw new TokenkeeperError(
        'TOKENKEEPER_INVALID_CLIENT',
        `No client for ${this.#serverUrl}: give clientInformation.`,
      );
    }
    state = await this.#read(() => true);
    const manager = await this.#serverManager(state);
    if (manager === undefined) throw new Error('unreachable: discovery and client are stored');
    const discovery = state.discovery as OAuthDiscoveryState;
    return {
      manager,
      state,
      scope: scopeOf(discovery, this.#options.clientMetadata),
      resource: discovery.resourceMetadata?.resource,
    };
  }

  /** @internal Forgets what is cached in memory after a login stored a new session. */
  _loggedIn(session: Session): void {
    this.#session = session;
    this.#failure = undefined;
  }

  // --- insides -------------------------------------------------------------------------------

  async #renewAfterRejection(): Promise<OAuthTokens> {
    const session = await this.#currentSession();
    if (session === undefined) {
      throw new TokenkeeperError(
        'TOKENKEEPER_NO_SESSION',
        `No session for the MCP server ${this.#serverUrl}: log in.`,
        {
          sessionId: this.#sessionId,
        },
      );
    }
    // The server refused the token we sent. If this process holds a newer one, that is the answer;
    // otherwise renew with it as the stale token: under the lock, a token another process stored
    // since is adopted, and only when the stored token is still the refused one is a refresh sent.
    const rejected = this.#rejected ?? this.#lastSent;
    this.#rejected = undefined;
    const accessToken =
      rejected !== undefined && session.tokens.accessToken !== rejected
        ? await session.getAccessToken()
        : await session.getAccessToken({ forceRefresh: true });
    this.#lastSent = accessToken;
    return this.#sdkTokens(session, accessToken);
  }

  async #clientCredentials(): Promise<OAuthTokens> {
    const server = await this.#serverManager(await this.#read(() => true));
    if (server === undefined) throw new Error('unreachable: the SDK asks for tokens after discovery');
    // `reuse` checks under the lock: processes starting together make one token request.
    const session = await server.login(
      {
        grant: 'client_credentials',
        ...(this.#options.clientMetadata.scope ? { scope: this.#options.clientMetadata.scope } : {}),
      },
      { sessionId: this.#sessionId, reuse: true, replace: true },
    );
    this.#session = session;
    const accessToken = await session.getAccessToken();
    this.#lastSent = accessToken;
    return this.#sdkTokens(session, accessToken);
  }

  #sdkTokens(session: Session, accessToken: string): OAuthTokens {
    const t = session.tokens;
    const out: OAuthTokens & { issuer?: string } = { access_token: accessToken, token_type: 'Bearer' };
    const left = t.expiresIn();
    if (left !== undefined) out.expires_in = Math.max(0, left); // seconds
    if (t.scope !== undefined) out.scope = t.scope;
    if (session.info().refreshable) out.refresh_token = REFRESH_HANDLE;
    // Stamped as the SDK stamps what it saves, so it presents these tokens to this server only.
    const issuer = this.#cached?.discovery?.authorizationServerUrl;
    if (issuer !== undefined) out.issuer = issuer;
    return out;
  }

  async #currentSession(): Promise<Session | undefined> {
    if (this.#session !== undefined) return this.#session;
    const state = await this.#read(
      (s) => s.discovery !== undefined && (s.client !== undefined || this.#options.clientInformation !== undefined),
    );
    const server = await this.#serverManager(state);
    if (server === undefined) return undefined;
    try {
      this.#session = await server.get(this.#sessionId);
    } catch (error) {
      // A session of another client (the app registered again) is not ours to use: log in again.
      if (isTokenkeeperError(error, 'TOKENKEEPER_SESSION_MISMATCH')) return undefined;
      throw error;
    }
    return this.#session;
  }

  /** The manager for the authorization server and client stored (one per pair, kept). */
  async #serverManager(state: McpState): Promise<SessionManager | undefined> {
    const discovery = state.discovery;
    const client = this.#options.clientInformation ?? state.client;
    if (discovery === undefined || client === undefined) return undefined;
    const key = serverKey(discovery, client);
    if (this.#server?.key === key) return this.#server.manager;
    const manager = this.#manager._forServer(
      serverOptions(discovery, client, this.#options.allowInsecureHttp === true),
    );
    this.#server = { key, manager };
    this.#session = undefined;
    return manager;
  }

  /** The cached state when it has what `enough` asks, else the store's. */
  async #read(enough: (s: McpState) => boolean): Promise<McpState> {
    if (this.#cached !== undefined && enough(this.#cached)) return this.#cached;
    this.#cached = await this.#state.read();
    return this.#cached;
  }

  async #update(change: (s: McpState) => Promise<unknown> | unknown): Promise<unknown> {
    let written: McpState | undefined;
    const out = await this.#state.update(async (s) => {
      const result = await change(s);
      if (result === false) return false;
      written = s;
      return result;
    });
    if (written !== undefined) this.#cached = written;
    return out;
  }
}
