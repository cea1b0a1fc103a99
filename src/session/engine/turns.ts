import { TokenkeeperError } from '../../errors.js';

/**
 * The per-process bound on renewals at work at once: a burst of many expired sessions (a deploy,
 * an outage) queues here, first come first served, instead of starting a thousand lock waits,
 * leases, heartbeats and token requests at once on one busy event loop and a small store pool.
 *
 * A renewal takes its turn first, then tries the session's lock once. Taken: it renews and gives
 * the turn back when its answer is stored, so a lease is only held while its renewal can go
 * ahead. Held by another process: it gives the turn back and waits for that holder's result
 * without one, so this process's next sessions go ahead meanwhile (a fleet renews different
 * sessions side by side instead of queueing on the same ones). If it then gets the lock and must
 * send after all, it waits for a turn holding the lock (its heartbeat keeps it). No deadlock:
 * whoever holds a turn never waits for a lock.
 */
export class RenewalTurns {
  readonly #max: number;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  /**
   * Resolves with the function that gives the turn back, once it is this caller's turn; throws
   * `TOKENKEEPER_LOCK_TIMEOUT` (naming the session) if `deadline` comes first.
   */
  take(deadline: number, sessionId: string, key: string): Promise<() => void> {
    if (this.#running < this.#max) {
      this.#running++;
      return Promise.resolve(this.#giveBack());
    }
    return new Promise((resolve, reject) => {
      const start = () => {
        clearTimeout(timer);
        resolve(this.#giveBack()); // the turn passes straight from the one who gave it back
      };
      const timer = setTimeout(
        () => {
          const at = this.#queue.indexOf(start);
          if (at >= 0) this.#queue.splice(at, 1);
          reject(
            new TokenkeeperError(
              'TOKENKEEPER_LOCK_TIMEOUT',
              `The session ${JSON.stringify(sessionId)} waited lock.waitMs for a renewal turn (maxConcurrentRenewals); nothing was sent.`,
              { key, sessionId },
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      this.#queue.push(start);
    });
  }

  #giveBack(): () => void {
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = this.#queue.shift();
      if (next === undefined) this.#running--;
      else next();
    };
  }
}
