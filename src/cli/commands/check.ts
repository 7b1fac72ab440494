import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import {
  type CheckResult,
  checkHistory,
  type HistoryEvent,
  HistoryParseError,
  parseEdn,
  parseJepsen,
  parseJsonl,
} from '../../check/index.ts';
import { type CommandModule, EXIT, UsageError } from '../program.ts';

const parsers: Record<string, (text: string) => HistoryEvent[]> = {
  jsonl: parseJsonl,
  jepsen: parseJepsen,
  edn: parseEdn,
};

/** The default time budget: long enough for every history we know of, short enough to wait for. */
const timeoutSecondsDefault = 60;

interface CheckFlags {
  readonly format: string;
  readonly timeout: number;
  readonly initialEmpty?: true;
  readonly failedCasObserved?: true;
  readonly json?: true;
}

function parseTimeout(raw: string): number {
  const seconds = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(seconds) || seconds < 0) {
    throw new UsageError(`--timeout must be a non-negative number of seconds, got '${raw}'`);
  }
  return seconds;
}

function exitCodeOf(result: CheckResult): number {
  switch (result.verdict) {
    case 'linearizable':
      return EXIT.ok;
    case 'not-linearizable':
      return EXIT.violation;
    case 'unknown':
      return EXIT.unknown;
  }
}

function summary(result: CheckResult): string {
  switch (result.verdict) {
    case 'linearizable':
      return `linearizable (${result.ops} operations on ${result.keys} keys)`;
    case 'not-linearizable':
      return `not linearizable: key ${JSON.stringify(result.key)}: ${result.explanation}`;
    case 'unknown':
      return `unknown: ${result.reason}`;
  }
}

/** Reads and parses one history: its events, or the message naming what is wrong with it. */
function load(file: string, parse: (text: string) => HistoryEvent[]): HistoryEvent[] | string {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    return `cannot read ${file}: ${(err as Error).message}`;
  }
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof HistoryParseError) return `${file}:${err.line}: ${err.detail}`;
    throw err;
  }
}

function checkFile(
  file: string,
  parse: (text: string) => HistoryEvent[],
  flags: CheckFlags,
): number {
  const events = load(file, parse);
  if (typeof events === 'string') {
    process.stderr.write(`quorate: ${events}\n`);
    return EXIT.usage;
  }
  const started = performance.now();
  const result = checkHistory(events, {
    budgetMs: flags.timeout * 1000,
    now: () => performance.now(),
    initial: flags.initialEmpty ? '' : null,
    failedCasObserved: flags.failedCasObserved ?? false,
  });
  const elapsedMs = Math.round(performance.now() - started);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ file, ...result, elapsedMs })}\n`);
  } else {
    process.stdout.write(`${file}: ${summary(result)}\n`);
  }
  return exitCodeOf(result);
}

/** Over several files, bad input outranks a violation, which outranks an unknown answer. */
const exitPriority: readonly number[] = [EXIT.usage, EXIT.violation, EXIT.unknown, EXIT.ok];

function run(files: readonly string[], flags: CheckFlags): number {
  const parse = parsers[flags.format];
  if (parse === undefined) {
    throw new UsageError(`--format must be jsonl, jepsen or edn, got '${flags.format}'`);
  }
  const codes = files.map((file) => checkFile(file, parse, flags));
  return exitPriority.find((code) => codes.includes(code)) ?? EXIT.ok;
}

/**
 * `quorate check FILE...`: is each recorded history linearizable? Exit 0 yes, 1 no, 2 bad
 * input (naming the line), 3 unknown; over several files, the most serious of those.
 */
export const checkCommand: CommandModule = (program: Command, setExitCode) => {
  program
    .command('check')
    .description('check that a key-value history is linearizable (exit 0 yes, 1 no, 3 unknown)')
    .argument('<files...>', "history files, or '-' for standard input; one verdict line each")
    .option('--format <format>', 'history format: jsonl, jepsen (etcd logs) or edn', 'jsonl')
    .option(
      '--timeout <seconds>',
      'time budget; past it the answer is unknown',
      parseTimeout,
      timeoutSecondsDefault,
    )
    .option('--initial-empty', 'keys start as "" rather than absent (porcupine kv histories)')
    .option(
      '--failed-cas-observed',
      'a failed cas saw a value other than expected (Jepsen etcd logs), not "did not happen"',
    )
    .option('--json', 'print the result as one JSON object')
    .action((files: string[], flags: CheckFlags) => {
      setExitCode(run(files, flags));
    });
};
