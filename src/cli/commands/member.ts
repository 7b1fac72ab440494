import { type CommandModule, EXIT, intOption, UsageError } from '../program.ts';
import { commandSummaries } from '../summaries.ts';
import {
  action,
  type ClientFlags,
  clientOf,
  exitCodesHelp,
  printAnswer,
  withClientOptions,
} from './client-options.ts';

const nodeId = intOption('ID', 1, 0xffff_ffff);

/** `quorate member add|promote|remove|list`: membership changes, run by the leader. */
export const memberCommand: CommandModule = (program, setExitCode) => {
  const member = program
    .command('member')
    .description(commandSummaries.member.description)
    .addHelpText('after', exitCodesHelp);
  withClientOptions(
    member
      .command('add <id> <peer-address> <client-url>')
      .description('add a node as a learner (host:port for peers, http URL for clients)'),
  ).action(
    action(setExitCode, async (id: string, peer: string, url: string, flags: ClientFlags) => {
      await clientOf(flags).addLearner(nodeId(id), peer, url);
      printAnswer(
        flags,
        { added: nodeId(id), role: 'learner' },
        {
          simple: (a) => [`added node ${a.added} as a learner`],
          table: (a) => ({ headers: ['added', 'role'], rows: [[a.added, a.role]] }),
        },
      );
      return EXIT.ok;
    }),
  );
  withClientOptions(member.command('promote <id>').description('make a learner a voter')).action(
    action(setExitCode, async (id: string, flags: ClientFlags) => {
      const client = clientOf(flags);
      // Promoting a voter would change nothing and say "promoted": refuse it, naming why.
      const current = (await client.members()).find((m) => m.id === nodeId(id));
      if (current === undefined) {
        throw new UsageError(`node ${id} is not a member: add it first (quorate member add)`);
      }
      if (current.role === 'voter') {
        throw new UsageError(`node ${id} is already a voter: only a learner can be promoted`);
      }
      await client.promote(nodeId(id));
      printAnswer(
        flags,
        { promoted: nodeId(id), role: 'voter' },
        {
          simple: (a) => [`promoted node ${a.promoted}`],
          table: (a) => ({ headers: ['promoted', 'role'], rows: [[a.promoted, a.role]] }),
        },
      );
      return EXIT.ok;
    }),
  );
  withClientOptions(member.command('remove <id>').description('remove a node')).action(
    action(setExitCode, async (id: string, flags: ClientFlags) => {
      await clientOf(flags).remove(nodeId(id));
      printAnswer(
        flags,
        { removed: nodeId(id) },
        {
          simple: (a) => [`removed node ${a.removed}`],
          table: (a) => ({ headers: ['removed'], rows: [[a.removed]] }),
        },
      );
      return EXIT.ok;
    }),
  );
  withClientOptions(member.command('list').description('list members')).action(
    action(setExitCode, async (flags: ClientFlags) => {
      const members = await clientOf(flags).members();
      printAnswer(flags, members, {
        simple: (a) => a.map((m) => `${m.id}\t${m.role}\t${m.peerAddress}\t${m.clientUrl}`),
        table: (a) => ({
          headers: ['id', 'role', 'peer address', 'client url'],
          rows: a.map((m) => [m.id, m.role, m.peerAddress, m.clientUrl]),
        }),
      });
      return EXIT.ok;
    }),
  );
};
