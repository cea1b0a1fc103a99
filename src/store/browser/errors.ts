import { redactedCause, shortKey, TokenkeeperError } from '../../errors.js';

/**
 * Turns what a browser storage API threw into a typed error: `TOKENKEEPER_STORE_FULL` for a
 * `QuotaExceededError` (nothing was written), `TOKENKEEPER_STORE_UNAVAILABLE` for the rest
 * (storage disabled by the user or by policy, a sandboxed frame, a private window that refuses
 * it). Our own errors pass through.
 */
export function browserStorageError(error: unknown, where: string, key?: string): unknown {
  if (error instanceof TokenkeeperError) return error;
  const name = (error as { name?: unknown } | null)?.name;
  const about = key === undefined ? '' : ` writing ${JSON.stringify(shortKey(key))}`;
  if (name === 'QuotaExceededError') {
    return new TokenkeeperError(
      'TOKENKEEPER_STORE_FULL',
      `${where} is full${about}; nothing was written and what was stored is unchanged. ` +
        'Free some space (other data of this origin counts too) and retry.',
      { key, cause: redactedCause(error) },
    );
  }
  return new TokenkeeperError(
    'TOKENKEEPER_STORE_UNAVAILABLE',
    `${where} cannot be used here${about} (${typeof name === 'string' ? name : 'error'}): storage may be disabled ` +
      'for this site, blocked in this frame, or refused in a private window.',
    { key, cause: redactedCause(error) },
  );
}
