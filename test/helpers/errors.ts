import { isTokenkeeperError, type TokenkeeperError } from '../../src/index.js';

/** The TokenkeeperError `promise` rejects with; fails the test if it resolves or rejects otherwise. */
export async function rejection(promise: Promise<unknown>): Promise<TokenkeeperError> {
  const e = await promise.then(
    () => undefined,
    (err) => err,
  );
  if (!isTokenkeeperError(e)) throw new Error(`expected a TokenkeeperError, got ${String(e)}`);
  return e;
}

/** The TokenkeeperError `fn` throws; fails the test if it returns or throws anything else. */
export function thrown(fn: () => unknown): TokenkeeperError {
  try {
    fn();
  } catch (error) {
    if (isTokenkeeperError(error)) return error;
    throw error;
  }
  throw new Error('expected a throw');
}
