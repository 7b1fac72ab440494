import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { QuorateClient } from '../../client/client.ts';
import { QuorateError } from '../../client/errors.ts';
import { EXIT, intOption, UsageError } from '../program.ts';
import { tableLines } from '../table.ts';

/**
 * What the cluster commands (kv, status, member) share: where the cluster is, how to trust
 * it, how to print, and how a failed call becomes a message and an exit code.
 */

/** Shared by the cluster commands' help. */
export const exitCodesHelp = `
Exit codes:
  0  done
  1  the operation failed (a key not found, a compare-and-set that did not match)
  2  bad input (rejected locally or by the server)
  3  the cluster is unreachable, has no leader, or a write's outcome is unknown`;

export const defaultEndpoint = 'http://127.0.0.1:2379';
/** Where `quorate up` (with its default --data) leaves the cluster's endpoints. */
export const defaultClusterFile = join('data', 'cluster.json');

/**
 * The file `quorate up` writes into its data directory: every member's client URL and, with
 * TLS, the CA that signed their certificates (a path relative to the file, or absolute).
 */
export interface ClusterFile {
  readonly endpoints: readonly string[];
  readonly ca?: string;
}

export interface ClientFlags {
  endpoints?: string;
  cluster?: string;
  timeout?: number;
  ca?: string;
  json?: true;
  writeOut?: OutputFormat;
  user?: string;
  token?: string;
}

/** How a cluster command prints its answer (`-w`, as etcdctl's `--write-out`). */
export const outputFormats = ['simple', 'json', 'table'] as const;
export type OutputFormat = (typeof outputFormats)[number];

function parseOutputFormat(raw: string): OutputFormat {
  const format = outputFormats.find((f) => f === raw);
  if (format === undefined) {
    throw new UsageError(`-w must be one of ${outputFormats.join(', ')}, got '${raw}'`);
  }
  return format;
}

/** The output format the flags ask for: `--json` is `-w json`; both at odds is refused. */
export function outputOf(flags: ClientFlags): OutputFormat {
  const asked = flags.writeOut ?? 'simple';
  if (flags.json && asked !== 'simple' && asked !== 'json') {
    throw new UsageError(`--json and -w ${asked} ask for two formats: pass one`);
  }
  return flags.json ? 'json' : asked;
}

export function withClientOptions(command: Command): Command {
  return command
    .option(
      '--endpoints <urls>',
      'comma-separated client URLs (default: $QUORATE_ENDPOINTS, else those in the --cluster ' +
        `file, else ${defaultEndpoint})`,
    )
    .option(
      '--cluster <file>',
      `the endpoints file quorate up writes (default: $QUORATE_CLUSTER or ./${defaultClusterFile})`,
    )
    .option('--timeout <ms>', 'time budget per attempt', intOption('--timeout', 1), 5000)
    .option('--ca <file>', 'PEM CA to trust for https endpoints (default: the --cluster file’s)')
    .option(
      '-w, --write-out <format>',
      `output format: ${outputFormats.join(', ')} (default: simple)`,
      parseOutputFormat,
    )
    .option('--json', 'print the answer as JSON (same as -w json)')
    .option(
      '--user <name:password>',
      'authenticate as this user when auth is on (as etcdctl; default: $QUORATE_USER)',
    )
    .option('--token <token>', 'a token from an earlier authentication (default: $QUORATE_TOKEN)')
    .addHelpText('after', exitCodesHelp);
}

/** An environment variable, unset when empty (as `VAR= quorate ...` means). */
function envVar(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** The cluster file named by the flags or the environment, if there is one to read. */
function readClusterFile(flags: ClientFlags): { path: string; file: ClusterFile } | undefined {
  const named = flags.cluster ?? envVar('QUORATE_CLUSTER');
  const path = resolve(named ?? defaultClusterFile);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (named === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`--cluster ${path}: ${(err as Error).message}`);
  }
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch {
    throw new UsageError(`${path} is not JSON (quorate up writes it; delete it or pass --cluster)`);
  }
  const endpoints = (file as Partial<ClusterFile> | null)?.endpoints;
  const ca = (file as Partial<ClusterFile> | null)?.ca;
  const valid =
    Array.isArray(endpoints) &&
    endpoints.every((e) => typeof e === 'string') &&
    (ca === undefined || typeof ca === 'string');
  if (!valid) throw new UsageError(`${path}: expected {"endpoints": [urls...], "ca"?: path}`);
  return { path, file: { endpoints, ...(ca === undefined ? {} : { ca }) } };
}

interface Target {
  readonly endpoints: string[];
  readonly caFile: string | undefined;
}

/** Endpoints and CA: flags, then the environment, then the cluster file, then the default. */
export function targetOf(flags: ClientFlags): Target {
  const fromEnv = flags.endpoints ?? envVar('QUORATE_ENDPOINTS');
  const cluster =
    fromEnv === undefined || flags.cluster !== undefined ? readClusterFile(flags) : undefined;
  const raw = fromEnv ?? cluster?.file.endpoints.join(',') ?? defaultEndpoint;
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
  const clusterCa = cluster?.file.ca;
  const caFile =
    flags.ca ??
    (clusterCa === undefined || cluster === undefined
      ? undefined
      : isAbsolute(clusterCa)
        ? clusterCa
        : resolve(cluster.path, '..', clusterCa));
  return { endpoints, caFile };
}

export function endpointsOf(flags: ClientFlags): string[] {
  return targetOf(flags).endpoints;
}

export function clientOf(flags: ClientFlags): QuorateClient {
  const { endpoints, caFile } = targetOf(flags);
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new UsageError(`--ca ${caFile}: ${(err as Error).message}`);
    }
  }
  const token = flags.token ?? envVar('QUORATE_TOKEN');
  const user = userOf(flags.user ?? envVar('QUORATE_USER'));
  if (token !== undefined && user !== undefined) {
    throw new UsageError('--user and --token are two credentials: pass one');
  }
  return new QuorateClient({
    endpoints,
    timeoutMs: flags.timeout ?? 5000,
    ...(ca === undefined ? {} : { ca }),
    ...(token === undefined ? {} : { token }),
    ...(user === undefined ? {} : { user }),
  });
}

/** `name:password`, split at the first colon as etcdctl does. */
function userOf(raw: string | undefined): { name: string; password: string } | undefined {
  if (raw === undefined) return undefined;
  const colon = raw.indexOf(':');
  if (colon <= 0) throw new UsageError('--user must be name:password');
  return { name: raw.slice(0, colon), password: raw.slice(colon + 1) };
}

/** Exit code for a failed client call: bad input 2, cluster trouble 3, anything else 1. */
export function exitCodeOf(err: QuorateError): number {
  const badInput = [
    'unauthenticated',
    'permission-denied',
    'invalid-request',
    'too-large',
    'unsupported-media-type',
    'not-found',
  ];
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

/** TLS codes that mean "this client does not trust the server's certificate". */
const untrustedCertificate =
  /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|CERT_SIGNATURE_FAILURE/;

/** What to do about a failed call, when the error itself does not say. */
export function fixFor(err: QuorateError): string | undefined {
  if (untrustedCertificate.test(err.message)) {
    return 'the server’s certificate is not signed by a CA this client trusts: pass --ca <the cluster CA> (quorate up --tls prints it, e.g. data/tls/ca.pem)';
  }
  if (err.code === 'unreachable') {
    return 'is the cluster running? (npm start / quorate up); name its members with --endpoints or --cluster';
  }
  return undefined;
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
      const fix = fixFor(err);
      process.stderr.write(
        `quorate: ${err.message} (${err.code})\n${fix === undefined ? '' : `  fix: ${fix}\n`}`,
      );
      setExitCode(exitCodeOf(err));
    }
  };
}

export const print = (line: string) => process.stdout.write(`${line}\n`);
export const fail = (line: string) => process.stderr.write(`quorate: ${line}\n`);
/** One JSON document per answer, on one line, for `--json`. */
export const printJson = (value: unknown) => print(JSON.stringify(value));

/** Rows as an etcdctl-style table (`-w table`). */
export function printTable(
  headers: readonly string[],
  rows: readonly (readonly (string | number | boolean)[])[],
): void {
  for (const line of tableLines(headers, rows)) print(line);
}

/**
 * Prints one answer in the format asked for: `json` the answer itself, `table` the rows
 * `table()` makes of it, `simple` the lines `simple()` makes.
 */
export function printAnswer<T>(
  flags: ClientFlags,
  answer: T,
  views: {
    readonly simple: (answer: T) => readonly string[];
    readonly table: (answer: T) => {
      readonly headers: readonly string[];
      readonly rows: readonly (readonly (string | number | boolean)[])[];
    };
  },
): void {
  const format = outputOf(flags);
  if (format === 'json') printJson(answer);
  else if (format === 'table') {
    const { headers, rows } = views.table(answer);
    printTable(headers, rows);
  } else for (const line of views.simple(answer)) print(line);
}
