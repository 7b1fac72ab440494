/**
 * Every subcommand as `quorate --help` lists it, in help order. The top-level help is drawn
 * from this table alone, without loading any command's module (their imports, the client,
 * the server, the simulator, were most of its start-up time); each module takes its
 * description from here, and cli/summaries.test.ts holds the terms to what the modules
 * register.
 */
export const commandSummaries = {
  check: {
    term: 'check [options] <files...>',
    description: 'check that a key-value history is linearizable (exit 0 yes, 1 no, 3 unknown)',
  },
  sim: {
    term: 'sim [options] <protocol>',
    description: 'simulate a cluster under faults and check it (exit 0 ok, 1 violation, 3 unknown)',
  },
  kv: { term: 'kv', description: 'read and write keys' },
  status: { term: 'status [options]', description: "show every member's status" },
  member: { term: 'member', description: 'change cluster membership' },
  node: { term: 'node [options]', description: 'run one key-value node (Raft or Multi-Paxos)' },
  up: {
    term: 'up [options]',
    description: 'start a local cluster as child processes and print its endpoints',
  },
  members: {
    term: 'members [options]',
    description: "a gossip agent's members: id, address, status, incarnation, tags",
  },
  event: { term: 'event', description: 'gossip user events: send and watch' },
} as const satisfies Record<string, { readonly term: string; readonly description: string }>;

export type CommandName = keyof typeof commandSummaries;

export function isCommandName(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(commandSummaries, name);
}
