import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { QuorateClient } from '../../client/client.ts';
import { QuorateError } from '../../client/errors.ts';
import type { KvChange, KvEntry } from '../../kv/machine.ts';
import { type CommandModule, EXIT, intOption, UsageError } from '../program.ts';

/** Shared by the cluster commands (kv, status, member). */
export const exitCodesHelp = `
Exit codes:
  0  done
  1  the operation failed (a key not found, a compare-and-set that did not match)
  2  bad input (rejected locally or by the server)
  3  the cluster is unreachable, has no leader, or a write's outcome is unknown`;

export const defaultEndpoint = 'http://127.0.0.1:2379';

export interface ClientFlags {
  endpoints?: string;
  timeout?: number;
  ca?: string;
}

export function withClientOptions(command: Command): Command {
  return command
    .option(
      '--endpoints <urls>',
      `comma-separated client URLs (default: $QUORATE_ENDPOINTS or ${defaultEndpoint})`,
    )
    .option('--timeout <ms>', 'time budget per attempt', intOption('--timeout', 1), 5000)
    .option('--ca <file>', 'PEM CA to trust for https endpoints (a private cluster CA)')
    .addHelpText('after', exitCodesHelp);
}

export function endpointsOf(flags: ClientFlags): string[] {
  const raw = flags.endpoints ?? process.env.QUORATE_ENDPOINTS ?? defaultEndpoint;
  const endpoints = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (endpoints.length === 0) throw new UsageError('--endpoints is empty');
  for (const endpoint of endpoints) {
    if (!URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol)) {
      throw new UsageError(`--endpoints: '${endpoint}' is not an http(s) URL`);
    }
  }
  return endpoints;
}

export function clientOf(flags: ClientFlags): QuorateClient {
  let ca: string | undefined;
  if (flags.ca !== undefined) {
    try {
      ca = readFileSync(flags.ca, 'utf8');
    } catch (err) {
      throw new UsageError(`--ca ${flags.ca}: ${(err as Error).message}`);
    }
  }
  return new QuorateClient({
    endpoints: endpointsOf(flags),
    timeoutMs: flags.timeout ?? 5000,
    ...(ca === undefined ? {} : { ca }),
  });
}

/** Exit code for a failed client call: bad input 2, cluster trouble 3, anything else 1. */
export function exitCodeOf(err: QuorateError): number {
  const badInput = ['invalid-request', 'too-large', 'unsupported-media-type', 'not-found'];
  // Asking a node for a call its protocol lacks (membership on Multi-Paxos) is a usage error.
  const unsupported = err.code === 'method-not-allowed' || err.code === 'not-implemented';
  if (badInput.includes(err.code) || unsupported) return EXIT.usage;
  const clusterTrouble = [
    'unreachable',
    'unknown-outcome',
    'no-leader',
    'not-leader',
    'leader-unreachable',
    'unavailable',
    'overloaded',
  ];
  return clusterTrouble.includes(err.code) ? EXIT.unknown : EXIT.violation;
}

/** Runs a command's body, turning client errors into a message and an exit code. */
export function action<A extends unknown[]>(
  setExitCode: (code: number) => void,
  body: (...args: A) => Promise<number>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      setExitCode(await body(...args));
    } catch (err) {
      if (!(err instanceof QuorateError)) throw err;
      process.stderr.write(`quorate: ${err.message} (${err.code})\n`);
      setExitCode(exitCodeOf(err));
    }
  };
}

export const print = (line: string) => process.stdout.write(`${line}\n`);
const fail = (line: string) => process.stderr.write(`quorate: ${line}\n`);

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

/** `kv put`, `kv del`, `kv cas`: writes, each applied once however often it is retried. */
function addWriteCommands(kv: Command, setExitCode: (code: number) => void): void {
  withClientOptions(kv.command('put <key> <value>').description('set a key')).action(
    action(setExitCode, async (key: string, value: string, flags: ClientFlags) => {
      const r = await clientOf(flags).put(key, value);
      print(`OK (revision ${r.revision}, version ${r.version})`);
      return EXIT.ok;
    }),
  );
  withClientOptions(kv.command('del <key>').description('delete a key')).action(
    action(setExitCode, async (key: string, flags: ClientFlags) => {
      const r = await clientOf(flags).delete(key);
      print(r.deleted ? `deleted (revision ${r.revision})` : 'absent: nothing deleted');
      return EXIT.ok;
    }),
  );
  withClientOptions(
    kv
      .command('cas <key> <expected> <value>')
      .description('set a key only if its value is <expected> (exit 1 and print it if not)'),
  )
    .option('--version', '<expected> is a version number; 0 means "only if absent"')
    .action(
      action(
        setExitCode,
        async (key: string, expected: string, value: string, flags: Flags<{ version?: true }>) => {
          const client = clientOf(flags);
          const r = flags.version
            ? await client.casVersion(key, intOption('<expected>')(expected), value)
            : await client.cas(key, expected, value);
          if (r.ok) {
            print(`OK (revision ${r.revision}, version ${r.entry?.version ?? 0})`);
            return EXIT.ok;
          }
          if (r.entry !== null) print(r.entry.value);
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
    .option('--json', 'print the entry as JSON')
    .action(
      action(setExitCode, async (key: string, flags: Flags<{ stale?: true; json?: true }>) => {
        const r = await clientOf(flags).get(key, flags.stale ? 'stale' : 'linearizable');
        if (flags.json) print(JSON.stringify(r));
        if (r.entry === null) {
          fail(`key '${key}' not found`);
          return EXIT.violation;
        }
        if (!flags.json) print(r.entry.value);
        return EXIT.ok;
      }),
    );
  withClientOptions(kv.command('list [prefix]').description('list keys under a prefix'))
    .option('--limit <n>', 'most keys to print', intOption('--limit', 1), 100)
    .option('--stale', 'serve from the contacted node')
    .option('--json', 'print the answer as JSON')
    .action(
      action(
        setExitCode,
        async (
          prefix: string | undefined,
          flags: Flags<{ limit: number; stale?: true; json?: true }>,
        ) => {
          const r = await clientOf(flags).list(prefix ?? '', {
            limit: flags.limit,
            consistency: flags.stale ? 'stale' : 'linearizable',
          });
          if (flags.json) print(JSON.stringify(r));
          else for (const e of r.entries) print(`${e.key}\t${e.value}`);
          if (r.more && !flags.json) fail(`more keys match; raise --limit`);
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
              print(formatChange(change));
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
    .description('read and write keys')
    .addHelpText('after', exitCodesHelp);
  addWriteCommands(kv, setExitCode);
  addReadCommands(kv, setExitCode);
  addWatchCommand(kv, setExitCode);
};
