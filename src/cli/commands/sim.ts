import type { Command } from 'commander';
import { type CommandModule, intOption, UsageError } from '../program.ts';
import { commandSummaries } from '../summaries.ts';

export interface SimFlags {
  readonly nodes?: number;
  readonly seed?: number;
  readonly seeds?: number;
  readonly ops: number;
  readonly clients: number;
  readonly faults: string;
  readonly intensity: number;
  readonly trace?: string;
  readonly history?: string;
  readonly json?: true;
  readonly workload?: string;
}

/**
 * The names `quorate sim` takes, for its help without loading the simulator; sim.test.ts
 * holds this list equal to the simulator's protocol table (src/sim/protocols.ts).
 */
export const simProtocolNames: readonly string[] = [
  'raft',
  'primary-backup',
  'paxos',
  'fastpaxos',
  'multipaxos',
  'gossip',
  'totem',
  'totem-kv',
  'scuttlebutt',
  'merkle',
];

/** Seeds are kept below 2^31 so they are easy to type back in. */
export const seedMax = 0x7fff_ffff;

function parseIntensity(raw: string): number {
  const x = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(x) || x < 0 || x > 1) {
    throw new UsageError(`--intensity must be a number in [0, 1], got '${raw}'`);
  }
  return x;
}

/**
 * `quorate sim <protocol>`: deterministic simulation with faults; exit 0 when every check
 * holds, 1 on a violation (printing the replay command), 2 on bad arguments, 3 when a
 * check ran out of budget.
 */
export const simCommand: CommandModule = (program: Command, setExitCode) => {
  program
    .command('sim')
    .description(commandSummaries.sim.description)
    .argument('<protocol>', `protocol to run: ${simProtocolNames.join(', ')}`)
    .option(
      '--nodes <n>',
      'cluster size (default: the protocol’s)',
      intOption('--nodes', 1, 10_000),
    )
    .option(
      '--seed <s>',
      'seed of the run (default: from the clock, printed)',
      intOption('--seed', 0, seedMax),
    )
    .option(
      '--seeds <k>',
      'run k seeds (from --seed, default 1) and summarize',
      intOption('--seeds', 1, 1_000_000),
    )
    .option(
      '--ops <n>',
      'client operations in the faulty phase',
      intOption('--ops', 0, 10_000_000),
      200,
    )
    .option('--clients <c>', 'concurrent clients', intOption('--clients', 0, 10_000), 5)
    .option('--faults <list>', 'comma list of faults, all or none', 'all')
    .option('--intensity <x>', 'nemesis intensity in [0, 1]', parseIntensity, 0.5)
    .option('--trace <file>', 'write every event as JSON Lines')
    .option('--history <file>', 'write the client history as JSON Lines')
    .option('--json', 'print machine-readable results')
    .option('--workload <name>', 'another client workload of the protocol: kv (totem)')
    .action(async (protocol: string, flags: SimFlags) => {
      const name = flags.workload === undefined ? protocol : `${protocol}-${flags.workload}`;
      if (flags.workload !== undefined && !simProtocolNames.includes(name)) {
        throw new UsageError(`no workload '${flags.workload}' for ${protocol}`);
      }
      // The simulator and every protocol load only for a run, not for --help.
      const { run } = await import('./sim-run.ts');
      setExitCode(run(name, flags));
    });
};
