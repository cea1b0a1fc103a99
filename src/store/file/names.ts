import { createHash } from 'node:crypto';

/** Encoded names longer than this are replaced by a hash, keeping every file name under 255 bytes. */
const MAX_ENCODED = 200;
const LITERAL = /^[a-z0-9_-]$/;

/**
 * The file name stem of a key: bytes outside `[a-z0-9_-]` become `%HH` (upper-case hex). No
 * key can produce `/`, `\`, `.`, `..` or a name starting with `.`, and the encoding is
 * injective even on case-insensitive file systems (literals are lower-case, escapes upper).
 * A key whose stem would be too long is stored as `~` + SHA-256, its key kept inside the file.
 */
export function encodeKey(key: string): string {
  const stem = escapeKey(key);
  return stem.length > MAX_ENCODED ? `~${createHash('sha256').update(key, 'utf8').digest('hex')}` : stem;
}

/** The escaped form without the length cap: used for prefixes, which may be cut anywhere. */
export function escapeKey(key: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(key)) {
    const ch = String.fromCharCode(byte);
    out += LITERAL.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The key of an escaped stem, or undefined for a hashed stem or a name we did not write. */
export function decodeStem(stem: string): string | undefined {
  if (stem.startsWith('~')) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < stem.length; i++) {
    const ch = stem[i] as string;
    if (ch === '%') {
      const hex = stem.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (LITERAL.test(ch)) {
      bytes.push(ch.charCodeAt(0));
    } else {
      return undefined;
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}
