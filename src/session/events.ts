import type { TokenkeeperError } from '../errors.js';

/** The events a {@link SessionManager} emits. Payloads never hold a token. */
export interface SessionEvents {
  login: { sessionId: string; grant: string };
  refresh: {
    sessionId: string;
    grant: string;
    expiresAt: number | undefined;
    /** How long this renewal waited for the store's lock, in ms. */
    lockWaitMs?: number;
    /** How long the token endpoint took to answer (retries included), in ms. */
    serverMs?: number;
  };
  logout: { sessionId: string; revoked: boolean };
  'reauth-required': { sessionId: string; error: TokenkeeperError };
  error: { sessionId?: string; error: unknown };
  /**
   * Something works, but not as safely or as long as it could: a lock that covers one process
   * only (`TOKENKEEPER_SINGLE_PROCESS_LOCK`), or a login that asked for `offline_access` and got
   * no refresh token (`TOKENKEEPER_NO_REFRESH_TOKEN`, with its `sessionId`): the session will
   * need a new login when its access token ends.
   */
  warning:
    | { code: 'TOKENKEEPER_SINGLE_PROCESS_LOCK'; message: string }
    | { code: 'TOKENKEEPER_NO_REFRESH_TOKEN'; message: string; sessionId: string };
}

export type SessionEventName = keyof SessionEvents;
type Handler<E extends SessionEventName> = (payload: SessionEvents[E]) => void;

/** A small typed emitter (no `node:events`: the core runs in browsers). */
export class Emitter {
  readonly #handlers = new Map<SessionEventName, Set<Handler<never>>>();

  /** Adds a handler; returns a function that removes it. */
  on<E extends SessionEventName>(event: E, handler: Handler<E>): () => void {
    let set = this.#handlers.get(event);
    if (set === undefined) {
      set = new Set();
      this.#handlers.set(event, set);
    }
    set.add(handler as Handler<never>);
    return () => this.off(event, handler);
  }

  off<E extends SessionEventName>(event: E, handler: Handler<E>): void {
    this.#handlers.get(event)?.delete(handler as Handler<never>);
  }

  /** Calls every handler; a handler that throws is reported as `error`, never breaks the caller. */
  emit<E extends SessionEventName>(event: E, payload: SessionEvents[E]): void {
    for (const handler of this.#handlers.get(event) ?? []) {
      try {
        (handler as Handler<E>)(payload);
      } catch (error) {
        if (event !== 'error') this.emit('error', { error });
      }
    }
  }
}
