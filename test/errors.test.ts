import { describe, expect, it } from 'vitest';
import { ErrorCodes, isTokenkeeperError, memoryStore, TokenkeeperError } from '../src/index.js';

describe('ErrorCodes', () => {
  it('names every code once, as TOKENKEEPER_<name>', () => {
    const entries = Object.entries(ErrorCodes);
    expect(entries.length).toBeGreaterThan(20);
    for (const [name, code] of entries) expect(code).toBe(`TOKENKEEPER_${name}`);
    expect(new Set(Object.values(ErrorCodes)).size).toBe(entries.length);
  });

  it('is what thrown errors carry, and what isTokenkeeperError narrows by', async () => {
    const store = memoryStore();
    const error = await store.set('', { a: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenkeeperError);
    expect((error as TokenkeeperError).code).toBe(ErrorCodes.INVALID_KEY);
    expect(isTokenkeeperError(error, ErrorCodes.INVALID_KEY)).toBe(true);
    expect(isTokenkeeperError(error, ErrorCodes.CORRUPT_RECORD)).toBe(false);
  });
});
