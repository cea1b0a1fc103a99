/**
 * How a store names its server in its `name`, its errors and its warnings: the scheme, host,
 * port and path of its URL and nothing else. User info (`user:password@`) and the query
 * (`?password=...`, `?sslkey=...`, tokens of any name) can hold credentials, and a description
 * travels to logs, CLI output, `doctor` and events, so neither is ever part of it.
 */
export function describeServer(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL at all: even its scheme may be a password typed in the wrong place.
    return 'a server URL that does not parse';
  }
  const path = parsed.pathname === '/' ? '' : parsed.pathname;
  return parsed.host === '' ? `${parsed.protocol}${path}` : `${parsed.protocol}//${parsed.host}${path}`;
}
