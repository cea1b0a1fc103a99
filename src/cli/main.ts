#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { isTokenkeeperError } from '../errors.js';
import {
  type Common,
  clearSessions,
  listRows,
  migrate,
  readRow,
  rekey,
  removeSession,
  type SessionRow,
  withStore,
} from './commands.js';
import { type Check, doctor } from './doctor.js';
import { Progress } from './progress.js';
import { describeStore, parseKeys, UsageError, withApp } from './stores.js';
import { printable, printableJson } from './text.js';

/**
 * `tokenkeeper`: look inside session stores, move them, re-encrypt them, and find out what is
 * wrong. Exit codes: 0 done, 1 done with failures (a check failed, a record not copied),
 * 2 bad usage, 3 the store or server cannot be reached, 4 a key is wrong or missing.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, unavailable: 3, key: 4 } as const;

interface GlobalOptions {
  store?: string;
  namespace: string;
  app?: string;
  key: string[];
  keyFile?: string;
  issuer?: string;
  clientId?: string;
  json?: boolean;
}

const program = new Command('tokenkeeper')
  .description('Look after tokenkeeper session stores: list, migrate, re-encrypt, diagnose. Tokens are never shown.')
  .addOption(
    new Option('--store <url>', 'the store: file:[path], sqlite:path, redis://..., rediss://..., postgres://...').env(
      'TOKENKEEPER_STORE',
    ),
  )
  .addOption(
    new Option(
      '--app <name>',
      "the app's store namespace, as the app gives it to its store (fileStore({ namespace: 'my_app' })); default: the one app found in a file: store's folder",
    ).env('TOKENKEEPER_APP'),
  )
  .option('--namespace <name>', "the application's namespace (SessionManager namespace)", 'tokenkeeper')
  .option('--key <id:base64>', 'an encryption key (repeat for older keys; the first is current)', collect, [])
  .option('--key-file <path>', 'a file with one id:base64 key per line')
  .option('--issuer <url>', "the application's issuer (encrypted records are bound to it; doctor checks it)")
  .option('--client-id <id>', "the application's client id (encrypted records are bound to it)")
  .option('--json', 'print JSON instead of text')
  .showHelpAfterError()
  .addHelpText(
    'after',
    `
Examples:
  $ tokenkeeper sessions list --store file:
  $ tokenkeeper sessions list --store redis://127.0.0.1:6379 --app my_app
  $ tokenkeeper sessions show alice --store redis://127.0.0.1:6379 --json
  $ tokenkeeper migrate --from sqlite:/var/lib/app/sessions.db --to redis://cache:6379
  $ tokenkeeper rekey --store postgres://db/app --key k1:... --new-key k2:... --issuer https://id.example --client-id app
  $ tokenkeeper doctor --store file: --issuer https://id.example

Exit codes: 0 done, 1 done with failures, 2 bad usage, 3 store or server unreachable, 4 wrong or missing key.`,
  );

/** Asks on the terminal (stderr, so --json output stays clean); true for "yes" or "y". */
async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^(y|yes)$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function common(extraKeys: string[] = [], storeOverride?: string): Common {
  const o = program.opts<GlobalOptions>();
  const given = storeOverride ?? o.store;
  if (given === undefined) throw new UsageError('give --store <url> (or TOKENKEEPER_STORE)');
  const store = withApp(given, o.app);
  const fileKeys =
    o.keyFile === undefined
      ? []
      : readFileSync(o.keyFile, 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && !l.startsWith('#'));
  const context = o.issuer !== undefined && o.clientId !== undefined ? `${o.issuer} ${o.clientId}` : undefined;
  return {
    store,
    namespace: o.namespace,
    encryption: parseKeys([...extraKeys, ...o.key, ...fileKeys], context),
    json: o.json === true,
    ...(o.issuer === undefined ? {} : { issuer: o.issuer }),
    ...(o.clientId === undefined ? {} : { clientId: o.clientId }),
  };
}

function print(c: { json: boolean }, value: unknown, text: () => string): void {
  process.stdout.write(`${c.json ? printableJson(value) : text()}\n`);
}

function table(rows: SessionRow[]): string {
  if (rows.length === 0) return 'no sessions';
  const cols: (keyof SessionRow)[] = ['id', 'status', 'grant', 'expiresAt', 'lastRenewedAt', 'scope'];
  const cell = (r: SessionRow, k: keyof SessionRow) =>
    printable(String(r[k] ?? (k === 'status' ? '' : '-')) + (k === 'status' && r.problem ? ` (${r.problem})` : ''));
  const widths = cols.map((k) => Math.max(k.length, ...rows.map((r) => cell(r, k).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [line(cols.map(String)), ...rows.map((r) => line(cols.map((k) => cell(r, k))))].join('\n');
}

const sessions = program.command('sessions').description('list, show and remove sessions');

sessions
  .command('list')
  .description('every session in the namespace: status, grant, expiry, scope, last renewal')
  .action(async () => {
    const c = common();
    const rows: SessionRow[] = [];
    await withStore(c, async (store) => {
      for await (const row of listRows(c, store)) rows.push(row);
    });
    rows.sort((a, b) => a.id.localeCompare(b.id));
    print(c, rows, () => table(rows));
    if (rows.some((r) => r.problem !== undefined)) process.exitCode = EXIT.key;
  });

sessions
  .command('show <id>')
  .description('one session, every field but its tokens')
  .action(async (id: string) => {
    const c = common();
    const row = await withStore(c, (store) => readRow(store, c, id));
    if (row === undefined) {
      print(c, { error: 'not found', id }, () => `no session ${printable(JSON.stringify(id))}`);
      process.exitCode = EXIT.failed;
      return;
    }
    print(c, row, () =>
      Object.entries(row)
        .map(([k, v]) => `${k.padEnd(14)} ${printable(String(v))}`)
        .join('\n'),
    );
    if (row.problem !== undefined) process.exitCode = EXIT.key;
  });

sessions
  .command('rm <id>')
  .description('delete one session (without revoking it)')
  .action(async (id: string) => {
    const c = common();
    const removed = await removeSession(c, id);
    const shown = printable(JSON.stringify(id));
    print(c, { removed }, () => (removed ? `removed ${shown}` : `no session ${shown}`));
    if (!removed) process.exitCode = EXIT.failed;
  });

sessions
  .command('clear')
  .description('delete every session of the namespace')
  .option(
    '--revoke',
    'revoke each at the server first (needs --issuer and --client-id; TOKENKEEPER_CLIENT_SECRET for a secret)',
  )
  .option('--yes', 'delete without asking (needed when there is no terminal to ask on)')
  .action(async (o: { revoke?: boolean; yes?: boolean }) => {
    const c = common();
    if (o.yes !== true) {
      if (!process.stdin.isTTY || !process.stderr.isTTY) {
        throw new UsageError('sessions clear deletes every session of the namespace: add --yes to confirm');
      }
      const question = `Delete every session of namespace ${printable(JSON.stringify(c.namespace))} in ${describeStore(c.store)}${o.revoke ? ' (revoking each)' : ''}? Type yes to go on: `;
      if (!(await confirm(question))) {
        print(c, { removed: 0, cancelled: true }, () => 'cancelled: nothing removed');
        process.exitCode = EXIT.failed;
        return;
      }
    }
    const removed = await clearSessions(c, o.revoke === true);
    print(c, { removed }, () => `removed ${removed} session${removed === 1 ? '' : 's'}`);
  });

program
  .command('migrate')
  .description('copy every record to another store: resumable, idempotent, never over a newer record')
  .requiredOption('--from <url>', 'the store to copy from')
  .requiredOption('--to <url>', 'the store to copy to')
  .option('--concurrency <n>', 'records in flight at once', (v) => Number.parseInt(v, 10), 32)
  .action(async (o: { from: string; to: string; concurrency: number }) => {
    const c = common([], o.from);
    if (!Number.isInteger(o.concurrency) || o.concurrency < 1)
      throw new UsageError('--concurrency must be a positive integer');
    const progress = new Progress(c.json, 'migrate');
    const result = await migrate(c, o.to, o.concurrency, progress.listener).finally(() => progress.stop());
    print(
      c,
      result,
      () =>
        `${result.keys} records: ${result.copied} copied, ${result.same} already there, ${result.newerKept} newer in the target (kept), ${result.differentKept} different and not comparable (kept; give --key), ${result.expired} expired, ${result.failed} failed`,
    );
    if (result.failed > 0) process.exitCode = EXIT.failed;
  });

program
  .command('rekey')
  .description('re-encrypt every record under a new key: resumable, each record rewritten atomically')
  .requiredOption('--new-key <id:base64>', 'the new current key')
  .action(async (o: { newKey: string }) => {
    const c = common([o.newKey]);
    const progress = new Progress(c.json, 'rekey');
    const result = await rekey(c, progress.listener).finally(() => progress.stop());
    print(
      c,
      result,
      () =>
        `${result.keys} records: ${result.rekeyed} re-encrypted, ${result.already} already under the new key, ${result.verified} read back with the new key alone, ${result.failed} failed`,
    );
    if (result.failed > 0) process.exitCode = EXIT.key;
  });

program
  .command('doctor')
  .description(
    'check the store (permissions, connectivity, latency, stuck renewals) and the server (discovery, revocation, clock)',
  )
  .action(async () => {
    const c = common();
    const checks: Check[] = await doctor(c);
    print(c, checks, () =>
      checks.map((k) => `${k.ok ? 'ok  ' : 'FAIL'} ${k.check.padEnd(17)} ${printable(k.detail)}`).join('\n'),
    );
    if (checks.some((k) => !k.ok))
      process.exitCode = checks.some((k) => k.check === 'store' && !k.ok) ? EXIT.unavailable : EXIT.failed;
  });

/**
 * Once the command is done, its exit code is set and nothing of it is left to wait for: stores
 * close within a bound. Should a client library still hold a handle (one that keeps
 * reconnecting), the command ends anyway, with its code, instead of hanging on.
 */
const exitSoon = () => setTimeout(() => process.exit(), 5_000).unref();

program
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    const json = program.opts<GlobalOptions>().json === true;
    const code =
      error instanceof UsageError || isTokenkeeperError(error, 'TOKENKEEPER_INVALID_ARGUMENT')
        ? EXIT.usage
        : isTokenkeeperError(error, 'TOKENKEEPER_DECRYPT_FAILED')
          ? EXIT.key
          : isTokenkeeperError(error, 'TOKENKEEPER_STORE_UNAVAILABLE') ||
              isTokenkeeperError(error, 'TOKENKEEPER_DISCOVERY_FAILED')
            ? EXIT.unavailable
            : EXIT.failed;
    const message = (error as Error).message ?? String(error);
    process.stderr.write(
      json
        ? `${printableJson({ error: message, code: (error as { code?: string }).code })}\n`
        : `tokenkeeper: ${printable(message)}\n`,
    );
    process.exitCode = code;
  })
  .finally(exitSoon);
