import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('npm start (the demo)', () => {
  it('runs end to end and reports one refresh for the storm', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], {
      cwd: new URL('..', import.meta.url),
      timeout: 60_000,
    });
    expect(stdout).toContain('1. Log in once');
    // With Chromium (always in CI), through the server's real login page.
    if (existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'))
      expect(stdout).toContain('through the login page');
    expect(stdout).toContain('0 token requests, same access token');
    expect(stdout).toMatch(
      /8 processes x 200 getAccessToken\(\) calls: the server saw 1 refresh request and 0 errors; all 1600 callers got the same new token/,
    );
    expect(stdout).toContain('refresh and access tokens revoked at the server');
    expect(stdout).not.toMatch(/oidc-provider (WARNING|NOTICE)/);
  }, 90_000);
});
