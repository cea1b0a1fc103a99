const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** The short HTML page a login flow answers a browser with: a title and one line, escaped. */
export function loginPage(title: string, text: string): string {
  const html = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
  return `<!doctype html><meta charset="utf-8"><title>${html(title)}</title><h1>${html(title)}</h1><p>${html(text)}</p>`;
}

/** Headers of such a page: never cached, no scripts or loads of any kind, no referrer. */
export const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'",
  'referrer-policy': 'no-referrer',
};
