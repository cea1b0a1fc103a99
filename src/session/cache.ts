import type { Session } from './session.js';

/**
 * The sessions a manager has handed out, by id, in bounded memory: the `size` most recently used
 * are held strongly, every other one only weakly (a `WeakRef`), so a session a caller still holds
 * keeps working (and keeps receiving its updates), while one nobody holds can be collected. A
 * process that touches a million sessions keeps `size` of them, not a million.
 */
export class SessionCache {
  readonly #size: number;
  readonly #weak = new Map<string, WeakRef<Session>>();
  readonly #recent = new Map<string, Session>();
  readonly #registry = new FinalizationRegistry<string>((id) => {
    if (this.#weak.get(id)?.deref() === undefined) this.#weak.delete(id);
  });

  constructor(size: number) {
    this.#size = size;
  }

  get(id: string): Session | undefined {
    return this.#recent.get(id) ?? this.#weak.get(id)?.deref();
  }

  /** Adds or refreshes `session` as the most recently used. */
  set(id: string, session: Session): void {
    if (this.#weak.get(id)?.deref() !== session) {
      this.#weak.set(id, new WeakRef(session));
      this.#registry.register(session, id);
    }
    this.#recent.delete(id);
    this.#recent.set(id, session);
    if (this.#recent.size > this.#size) {
      const oldest = this.#recent.keys().next().value as string;
      this.#recent.delete(oldest);
    }
  }

  /** Marks `id` as used (keeps it among the strongly held). */
  touch(id: string): void {
    const session = this.#recent.get(id);
    if (session === undefined) return;
    this.#recent.delete(id);
    this.#recent.set(id, session);
  }

  delete(id: string): void {
    this.#recent.delete(id);
    this.#weak.delete(id);
  }

  /** The ids of sessions still alive (held here or by a caller). */
  *ids(): IterableIterator<string> {
    for (const [id, ref] of this.#weak) if (ref.deref() !== undefined) yield id;
  }

  /** How many entries it keeps (alive or awaiting collection): for tests and metrics. */
  get entries(): number {
    return this.#weak.size;
  }
}
