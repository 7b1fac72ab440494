import { type Command, CommanderError, Help } from 'commander';
import { packageVersion } from './package-root.ts';
import { type CommandModule, EXIT, newProgram, UsageError } from './program.ts';
import { type CommandName, commandSummaries, isCommandName } from './summaries.ts';

/**
 * Every subcommand, loaded on demand: a `quorate check` run should not pay for loading the
 * HTTP server, the simulator and every protocol (startup dominated batch runs of the
 * checker before this), nor `quorate --help` for loading any of them.
 */
export const commandModules: Record<CommandName, () => Promise<CommandModule>> = {
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

/**
 * The one subcommand `argv` runs or asks help for (`quorate kv ...`, `quorate help kv`), or
 * undefined when it names none: the top-level help, --version or an unknown command, which
 * need only the commands' names and summaries.
 */
function commandOf(argv: readonly string[]): CommandName | undefined {
  const [first, second] = argv.slice(2);
  if (isCommandName(first)) return first;
  return first === 'help' && isCommandName(second) ? second : undefined;
}

/** Stand-ins that list every subcommand as its module would, for the top-level help. */
function addSummaries(program: Command): void {
  for (const [name, summary] of Object.entries(commandSummaries)) {
    program.command(name).description(summary.description);
  }
  const standard = new Help();
  program.configureHelp({
    subcommandTerm: (cmd) => {
      const name = cmd.name();
      return isCommandName(name) ? commandSummaries[name].term : standard.subcommandTerm(cmd);
    },
  });
}

/** The program before any subcommand is added. */
export function baseProgram(): Command {
  // Positional: a subcommand's own --version (kv cas) is not the program's.
  return newProgram()
    .enablePositionalOptions()
    .version(packageVersion(), '-V, --version', 'print the version');
}

/** The program that parses `argv`: the one subcommand it names, or every summary. */
export async function programFor(
  argv: readonly string[],
  setExitCode: (code: number) => void,
): Promise<Command> {
  const program = baseProgram();
  const name = commandOf(argv);
  if (name === undefined) addSummaries(program);
  else (await commandModules[name]())(program, setExitCode);
  return program;
}

/** Runs the CLI on `argv` (as process.argv: node, script, args...) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = await programFor(argv, (code) => (exitCode = code));
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
