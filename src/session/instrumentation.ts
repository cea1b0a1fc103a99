import type { Store } from '../store/types.js';

/** An attribute value of a span. Never a token, a secret or a session id. */
export type AttributeValue = string | number | boolean;

/**
 * How a manager reports what it does, for tracing and metrics (`tokenkeeper/otel` implements it
 * on OpenTelemetry; the core depends on no tracing library).
 */
export interface Instrumentation {
  /**
   * Runs `fn` inside a span. `set` adds an attribute once the work knows it (a status code). A
   * span ends when `fn` settles; a rejection is recorded on it and passed on unchanged.
   */
  span<T>(
    name: string,
    attributes: Record<string, AttributeValue>,
    fn: (set: (name: string, value: AttributeValue) => void) => Promise<T>,
  ): Promise<T>;
  /** Called once with the manager, to turn its events into metrics. */
  observe?(events: { on: (event: never, handler: never) => () => void }): void;
}

/** The kind of a store (`file`, `redis`, ...), never its path or address. */
export function storeKind(store: Store): string {
  return /^(?:encrypted\()?([a-z-]+)/.exec(store.name)?.[1] ?? 'custom';
}

/**
 * `store` with a span around every call that can wait: `get`, `set`, `delete` and `lock` (a lock
 * span is the lock wait). Keys are never attributes.
 */
export function instrumentedStore(store: Store, instrumentation: Instrumentation): Store {
  const kind = storeKind(store);
  const span = <T>(operation: string, fn: () => Promise<T>) =>
    instrumentation.span(`tokenkeeper.store.${operation}`, { 'tokenkeeper.store': kind }, fn);
  const wrapped: Store = {
    name: store.name,
    capabilities: store.capabilities,
    get: (key) => span('get', () => store.get(key)),
    set: (key, value, options) => span('set', () => store.set(key, value, options)),
    delete: (key, options) => span('delete', () => store.delete(key, options)),
    keys: (prefix) => store.keys(prefix),
    lock: (key, options) => span('lock', () => store.lock(key, options)),
    close: () => store.close(),
  };
  if (store.watch) wrapped.watch = (listener) => (store.watch as NonNullable<Store['watch']>)(listener);
  return wrapped;
}
