import { CommanderError } from 'commander';
import { packageVersion } from './package-root.ts';
import { type CommandModule, EXIT, newProgram, UsageError } from './program.ts';

/**
 * Every subcommand, in help order, loaded on demand: a `quorate check` run should not pay
 * for loading the HTTP server, the simulator and every protocol (startup dominated batch
 * runs of the checker before this).
 */
const commands: Record<string, () => Promise<CommandModule>> = {
  check: async () => (await import('./commands/check.ts')).checkCommand,
  sim: async () => (await import('./commands/sim.ts')).simCommand,
  kv: async () => (await import('./commands/kv.ts')).kvCommand,
  status: async () => (await import('./commands/status.ts')).statusCommand,
  member: async () => (await import('./commands/member.ts')).memberCommand,
  node: async () => (await import('./commands/node.ts')).nodeCommand,
  up: async () => (await import('./commands/up.ts')).upCommand,
  members: async () => (await import('./commands/members.ts')).membersCommand,
  event: async () => (await import('./commands/event.ts')).eventCommand,
};

/** The modules to load for `argv`: only the named subcommand's, or all for help. */
async function modulesFor(argv: readonly string[]): Promise<CommandModule[]> {
  const name = argv[2];
  const only = name === undefined ? undefined : commands[name];
  if (only) return [await only()];
  return Promise.all(Object.values(commands).map((load) => load()));
}

/** Runs the CLI on `argv` (as process.argv: node, script, args...) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  // Positional: a subcommand's own --version (kv cas) is not the program's.
  const program = newProgram()
    .enablePositionalOptions()
    .version(packageVersion(), '-V, --version', 'print the version');
  let exitCode: number = EXIT.ok;
  for (const register of await modulesFor(argv)) register(program, (code) => (exitCode = code));
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
