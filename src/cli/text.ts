/**
 * Terminal-safe text. Session ids (by default the ID token's `sub`), scopes and lock holders come
 * from servers and stores an attacker may write to: a raw ESC, CSI (0x9b), newline or bidi
 * override in them would move the cursor, recolour, hide or fake lines of the output. Each such
 * character is shown as an escape instead (`\x1b`, `\n`, `\u202e`).
 */
const UNPRINTABLE =
  /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const named = NAMED[c];
    if (named !== undefined) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** JSON whose strings carry no character a terminal acts on (JSON.stringify leaves 0x7f-0x9f and bidi marks raw). */
export function printableJson(value: unknown): string {
  return JSON.stringify(value).replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
