// The command line finds an app's sessions by the library's rules: `fileStore({ namespace })`
// keeps them in `<default folder>/apps/<namespace>`, and `--app` (or the one app found there)
// points the command at them, for every store.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withApp } from '../../src/cli/stores.js';
import { fileStore } from '../../src/exports/file.js';
import { SessionManager } from '../../src/index.js';
import { runChild, startChild } from '../helpers/child.js';

const home = mkdtempSync(join(tmpdir(), 'tk-cli-app-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));
// The CLI's default folder, as the library computes it from XDG_CONFIG_HOME.
const env = { XDG_CONFIG_HOME: home, TOKENKEEPER_STORE: undefined, TOKENKEEPER_APP: undefined };
const root = join(home, 'tokenkeeper');

async function appWithSession(namespace: string, id: string): Promise<void> {
  const manager = new SessionManager({
    store: fileStore({ namespace, path: root }), // path: what fileStore({ namespace }) uses under XDG_CONFIG_HOME
    tokenEndpoint: 'http://127.0.0.1:9/token',
    client: { clientId: 'app' },
  });
  await manager.adopt(id, { access_token: 'at', token_type: 'Bearer', expires_in: 3600, refresh_token: 'rt' });
  await manager.store.close?.();
}
const list = async (args: string[]) => {
  const r = await runChild('../../src/cli/main.ts', ['sessions', 'list', '--json', ...args], { env });
  return (JSON.parse(r.stdout) as { id: string }[]).map((row) => row.id);
};

describe('tokenkeeper sessions list finds the app', () => {
  it("lists the README's app (fileStore({ namespace: 'my_app' })) from --store file:, found or named", async () => {
    await appWithSession('my_app', 'me');
    expect(await list(['--store', 'file:'])).toEqual(['me']);
    expect(await list(['--store', 'file:', '--app', 'my_app'])).toEqual(['me']);
    expect(await list(['--store', 'file:?namespace=my_app'])).toEqual(['me']);
  });

  it('asks for --app when several apps keep sessions there, naming them', async () => {
    await appWithSession('other_app', 'you');
    const r = await startChild('../../src/cli/main.ts', ['sessions', 'list', '--store', 'file:'], { env }).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('holds the sessions of several apps (my_app, other_app): give --app <name>');
    expect(await list(['--store', 'file:', '--app', 'other_app'])).toEqual(['you']);
  });
});

describe('withApp(url, app): the store URL of an app', () => {
  it('sets the namespace of every kind of store', () => {
    expect(withApp('redis://127.0.0.1:6379', 'my_app')).toBe('redis://127.0.0.1:6379?namespace=my_app');
    expect(withApp('postgres://postgres@127.0.0.1/test', 'my_app')).toBe(
      'postgres://postgres@127.0.0.1/test?namespace=my_app',
    );
    expect(withApp('sqlite:/var/lib/app.db', 'my_app')).toBe('sqlite:/var/lib/app.db?namespace=my_app');
    expect(withApp('file:', 'my_app')).toBe('file:///?namespace=my_app');
    expect(withApp('redis://h:6379?namespace=my_app', 'my_app')).toBe('redis://h:6379?namespace=my_app');
  });

  it('refuses an --app that contradicts the URL', () => {
    expect(() => withApp('redis://h:6379?namespace=a', 'b')).toThrow(
      '--app b and ?namespace=a name two different apps',
    );
  });

  it('keeps a file store with records of its own, or an empty one, as it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tk-cli-app-'));
    try {
      expect(withApp(`file:${dir}`, undefined)).toBe(`file:${dir}`);
      mkdirSync(join(dir, 'apps', 'solo'), { recursive: true });
      expect(withApp(`file:${dir}`, undefined)).toBe(`file://${dir}?namespace=solo`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
