import { Command } from 'commander';

/** Exit codes shared by every subcommand. */
export const EXIT = {
  ok: 0,
  /** A check failed: a violation, a non-linearizable history. */
  violation: 1,
  /** Bad arguments or bad input. */
  usage: 2,
  /** The answer is unknown (a time budget ran out). */
  unknown: 3,
} as const;

/**
 * A subcommand module: adds its command to the program. Its action returns the process
 * exit code rather than calling process.exit, so tests can run the CLI in-process.
 */
export type CommandModule = (program: Command, setExitCode: (code: number) => void) => void;

/** Thrown by a command for bad input that should exit 2 with this message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses a non-negative safe integer option, or throws UsageError naming the flag. */
export function intOption(flag: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new UsageError(`${flag} must be an integer in ${min}..${max}, got '${raw}'`);
    }
    return value;
  };
}

export function newProgram(): Command {
  return new Command('quorate')
    .description('consensus and replication protocols for TypeScript')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
}
