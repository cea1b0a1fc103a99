import type { ChangeListener } from '../types.js';

/**
 * Tells other tabs of this origin which key a store wrote, over a `BroadcastChannel` (opened
 * only once someone listens or writes). Messages carry the key only, never a record. Where
 * there is no BroadcastChannel, nothing is announced and `watch` stays silent.
 */
export class ChangeChannel {
  readonly #name: string;
  readonly #listeners = new Set<ChangeListener>();
  #channel: BroadcastChannel | undefined;
  #closed = false;

  constructor(name: string) {
    this.#name = name;
  }

  announce(key: string): void {
    try {
      this.#open()?.postMessage({ key });
    } catch {
      // a closing page: the others re-read on their next renewal anyway
    }
  }

  listen(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    this.#open();
    return () => {
      this.#listeners.delete(listener);
    };
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#channel?.close();
    this.#channel = undefined;
  }

  #open(): BroadcastChannel | undefined {
    if (this.#channel !== undefined || this.#closed) return this.#channel;
    const Channel = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel;
    if (Channel === undefined) return undefined;
    this.#channel = new Channel(this.#name);
    this.#channel.onmessage = (event: MessageEvent) => {
      const key = (event.data as { key?: unknown } | null)?.key;
      for (const listener of this.#listeners) listener(typeof key === 'string' ? key : undefined);
    };
    return this.#channel;
  }
}
