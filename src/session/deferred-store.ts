import type { Store, StoreCapabilities } from '../store/types.js';

/**
 * A store that is `load()`'s once that resolves. The manager makes its default memory store and
 * its encryption this way, through `import()`: an app that uses neither does not ship their code
 * (a bundler puts it in a chunk of its own, loaded on first use).
 */
export function deferredStore(
  name: string,
  capabilities: StoreCapabilities,
  load: () => Promise<Store>,
  watchable: boolean,
): Store {
  let loaded: Promise<Store> | undefined;
  const inner = () => {
    loaded ??= load();
    return loaded;
  };
  const store: Store = {
    name,
    capabilities,
    get: async (key) => (await inner()).get(key),
    set: async (key, value, options) => (await inner()).set(key, value, options),
    delete: async (key, options) => (await inner()).delete(key, options),
    async *keys(prefix) {
      yield* (await inner()).keys(prefix);
    },
    lock: async (key, options) => (await inner()).lock(key, options),
    close: async () => {
      if (loaded !== undefined) await (await loaded).close();
    },
  };
  if (watchable) {
    store.watch = (listener) => {
      let stop: (() => void) | undefined;
      let stopped = false;
      inner().then(
        (s) => {
          if (!stopped) stop = s.watch?.(listener);
        },
        () => {},
      );
      return () => {
        stopped = true;
        stop?.();
      };
    };
  }
  return store;
}
