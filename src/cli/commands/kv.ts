import type { Command } from 'commander';
import type { KvEntryJson } from '../../client/wire.ts';
import type { KvChange, KvEntry } from '../../kv/machine.ts';
import { type CommandModule, EXIT, intOption, UsageError } from '../program.ts';
import { commandSummaries } from '../summaries.ts';
import {
  action,
  type ClientFlags,
  clientOf,
  exitCodesHelp,
  fail,
  outputOf,
  print,
  printAnswer,
  printJson,
  withClientOptions,
} from './client-options.ts';
import { readValue, type ValueFlags } from './values.ts';

function describeEntry(entry: KvEntry | null): string {
  return entry === null
    ? 'the key is absent'
    : `version ${entry.version}, revision ${entry.modRevision}`;
}

function formatChange(change: KvChange): string {
  return change.value === null
    ? `${change.revision}\tDEL\t${change.key}`
    : `${change.revision}\tPUT\t${change.key}\t${change.value}`;
}

type Flags<T> = ClientFlags & T;

const entryHeaders = ['key', 'value', 'version', 'mod revision'] as const;
/** A key or value that is not UTF-8 is shown in base64, marked so (JSON: `encoding`). */
const shown = (e: KvEntryJson, text: string) => (e.encoding === 'base64' ? `base64:${text}` : text);
const entryRow = (e: KvEntryJson) =>
  [shown(e, e.key), shown(e, e.value), e.version, e.modRevision] as const;

/** `kv put`, `kv del`, `kv cas`: writes, each applied once however often it is retried. */
function addWriteCommands(kv: Command, setExitCode: (code: number) => void): void {
  withClientOptions(
    kv
      .command('put <key> [value]')
      .description("set a key ('-' or --file: the value from standard input or a file)"),
  )
    .option('--file <path>', 'read the value from this file')
    .action(
      action(
        setExitCode,
        async (key: string, raw: string | undefined, flags: Flags<ValueFlags>) => {
          const value = await readValue(raw, flags);
          const r = await clientOf(flags).put(key, value);
          printAnswer(flags, r, {
            simple: (a) => [`OK (revision ${a.revision}, version ${a.version})`],
            table: (a) => ({ headers: ['revision', 'version'], rows: [[a.revision, a.version]] }),
          });
          return EXIT.ok;
        },
      ),
    );
  withClientOptions(kv.command('del <key>').description('delete a key')).action(
    action(setExitCode, async (key: string, flags: ClientFlags) => {
      const r = await clientOf(flags).delete(key);
      printAnswer(flags, r, {
        simple: (a) => [a.deleted ? `deleted (revision ${a.revision})` : 'absent: nothing deleted'],
        table: (a) => ({ headers: ['deleted', 'revision'], rows: [[a.deleted, a.revision]] }),
      });
      return EXIT.ok;
    }),
  );
  withClientOptions(
    kv
      .command('cas <key> <expected> [value]')
      .description('set a key only if its value is <expected> (exit 1 and print it if not)'),
  )
    .option('--version', '<expected> is a version number; 0 means "only if absent"')
    .option('--file <path>', 'read the new value from this file')
    .action(
      action(
        setExitCode,
        async (
          key: string,
          expected: string,
          raw: string | undefined,
          flags: Flags<ValueFlags & { version?: true }>,
        ) => {
          const value = await readValue(raw, flags);
          if (typeof value !== 'string') {
            throw new UsageError(
              'cas compares text values; this value is not UTF-8 (put takes bytes)',
            );
          }
          const client = clientOf(flags);
          const r = flags.version
            ? await client.casVersion(key, intOption('<expected>')(expected), value)
            : await client.cas(key, expected, value);
          // Failed, simple output prints the value that did not match, so a script can retry.
          printAnswer(flags, r, {
            simple: (a) =>
              a.ok
                ? [`OK (revision ${a.revision}, version ${a.entry?.version ?? 0})`]
                : a.entry === null
                  ? []
                  : [a.entry.value],
            table: (a) => ({
              headers: ['ok', 'revision', ...entryHeaders],
              rows: [
                [a.ok, a.revision, ...(a.entry === null ? ['', '', '', ''] : entryRow(a.entry))],
              ],
            }),
          });
          if (r.ok) return EXIT.ok;
          fail(`compare-and-set failed: ${describeEntry(r.entry)}`);
          return EXIT.violation;
        },
      ),
    );
}

/** `kv get`, `kv list`: linearizable reads unless --stale. */
function addReadCommands(kv: Command, setExitCode: (code: number) => void): void {
  withClientOptions(kv.command('get <key>').description("print a key's value (exit 1 if absent)"))
    .option('--stale', 'serve from the contacted node without a linearizable read')
    .action(
      action(setExitCode, async (key: string, flags: Flags<{ stale?: true }>) => {
        const r = await clientOf(flags).get(key, flags.stale ? 'stale' : 'linearizable');
        if (r.entry?.encoding === 'base64' && outputOf(flags) === 'simple') {
          // The stored bytes, exactly, as `kv put k --file f` took them (no newline added).
          process.stdout.write(Buffer.from(r.entry.value, 'base64'));
          return EXIT.ok;
        }
        printAnswer(flags, r, {
          simple: (a) => (a.entry === null ? [] : [a.entry.value]),
          table: (a) => ({
            headers: entryHeaders,
            rows: a.entry === null ? [] : [entryRow(a.entry)],
          }),
        });
        if (r.entry !== null) return EXIT.ok;
        fail(`key '${key}' not found`);
        return EXIT.violation;
      }),
    );
  withClientOptions(kv.command('list [prefix]').description('list keys under a prefix'))
    .option('--limit <n>', 'most keys to print', intOption('--limit', 1), 100)
    .option('--stale', 'serve from the contacted node')
    .action(
      action(
        setExitCode,
        async (prefix: string | undefined, flags: Flags<{ limit: number; stale?: true }>) => {
          const r = await clientOf(flags).list(prefix ?? '', {
            limit: flags.limit,
            consistency: flags.stale ? 'stale' : 'linearizable',
          });
          printAnswer(flags, r, {
            simple: (a) => a.entries.map((e) => `${shown(e, e.key)}\t${shown(e, e.value)}`),
            table: (a) => ({ headers: entryHeaders, rows: a.entries.map(entryRow) }),
          });
          // JSON says so in its `more` field.
          if (r.more && outputOf(flags) !== 'json') fail(`more keys match; raise --limit`);
          return EXIT.ok;
        },
      ),
    );
}

/** `kv watch`: prints changes until Ctrl-C or --count. */
function addWatchCommand(kv: Command, setExitCode: (code: number) => void): void {
  withClientOptions(
    kv
      .command('watch [prefix]')
      .description('print changes under a prefix as "revision PUT|DEL key [value]" until Ctrl-C'),
  )
    .option('--from <revision>', 'start after this revision (default: now)', intOption('--from'))
    .option('--count <n>', 'exit after this many changes', intOption('--count', 1))
    .action(
      action(
        setExitCode,
        async (prefix: string | undefined, flags: Flags<{ from?: number; count?: number }>) => {
          const format = outputOf(flags);
          if (format === 'table') {
            throw new UsageError(
              '-w table needs the whole answer; a watch streams: use simple or json',
            );
          }
          const abort = new AbortController();
          const stop = () => abort.abort();
          process.once('SIGINT', stop);
          let seen = 0;
          try {
            const options = {
              signal: abort.signal,
              ...(flags.from === undefined ? {} : { fromRevision: flags.from }),
            };
            for await (const change of clientOf(flags).watch(prefix ?? '', options)) {
              if (format === 'json') printJson(change);
              else print(formatChange(change));
              if (++seen === flags.count) break;
            }
          } finally {
            process.removeListener('SIGINT', stop);
          }
          return EXIT.ok;
        },
      ),
    );
}

export const kvCommand: CommandModule = (program, setExitCode) => {
  const kv = program
    .command('kv')
    .description(commandSummaries.kv.description)
    .addHelpText('after', exitCodesHelp);
  addWriteCommands(kv, setExitCode);
  addReadCommands(kv, setExitCode);
  addWatchCommand(kv, setExitCode);
};
