import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  type CheckResult,
  checkHistory,
  type HistoryEvent,
  HistoryParseError,
  parseEdn,
  parseJepsen,
  parseJsonl,
} from '../../check/index.ts';
import { EXIT, UsageError } from '../program.ts';
import type { CheckFlags } from './check.ts';

/** What `quorate check` runs once its flags are parsed (check.ts registers the command). */

const parsers: Record<string, (text: string) => HistoryEvent[]> = {
  jsonl: parseJsonl,
  jepsen: parseJepsen,
  edn: parseEdn,
};

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

export function run(files: readonly string[], flags: CheckFlags): number {
  const parse = parsers[flags.format];
  if (parse === undefined) {
    throw new UsageError(`--format must be jsonl, jepsen or edn, got '${flags.format}'`);
  }
  const codes = files.map((file) => checkFile(file, parse, flags));
  return exitPriority.find((code) => codes.includes(code)) ?? EXIT.ok;
}
