import type { Command } from 'commander';
import { type CommandModule, UsageError } from '../program.ts';
import { commandSummaries } from '../summaries.ts';

/** The default time budget: long enough for every history we know of, short enough to wait for. */
const timeoutSecondsDefault = 60;

export interface CheckFlags {
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

/**
 * `quorate check FILE...`: is each recorded history linearizable? Exit 0 yes, 1 no, 2 bad
 * input (naming the line), 3 unknown; over several files, the most serious of those.
 */
export const checkCommand: CommandModule = (program: Command, setExitCode) => {
  program
    .command('check')
    .description(commandSummaries.check.description)
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
    .action(async (files: string[], flags: CheckFlags) => {
      // The checker loads only for a check that runs, not for --help.
      const { run } = await import('./check-run.ts');
      setExitCode(run(files, flags));
    });
};
