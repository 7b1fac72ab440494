import { CommanderError } from 'commander';
import { type CommandModule, EXIT, newProgram, UsageError } from './program.ts';

/** Every subcommand, in help order. Each lives in its own module under commands/. */
const commands: CommandModule[] = [];

/** Runs the CLI on `argv` (as process.argv: node, script, args...) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = newProgram();
  let exitCode: number = EXIT.ok;
  for (const register of commands) register(program, (code) => (exitCode = code));
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end parsing with code 0; everything else is a usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`quorate: ${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
  return exitCode;
}
