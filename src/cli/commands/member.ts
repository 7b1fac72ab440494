import { type CommandModule, EXIT, intOption } from '../program.ts';
import {
  action,
  type ClientFlags,
  clientOf,
  exitCodesHelp,
  print,
  withClientOptions,
} from './kv.ts';

const nodeId = intOption('ID', 1, 0xffff_ffff);

/** `quorate member add|promote|remove|list`: membership changes, run by the leader. */
export const memberCommand: CommandModule = (program, setExitCode) => {
  const member = program
    .command('member')
    .description('change cluster membership')
    .addHelpText('after', exitCodesHelp);
  withClientOptions(
    member
      .command('add <id> <peer-address> <client-url>')
      .description('add a node as a learner (host:port for peers, http URL for clients)'),
  ).action(
    action(setExitCode, async (id: string, peer: string, url: string, flags: ClientFlags) => {
      await clientOf(flags).addLearner(nodeId(id), peer, url);
      print(`added node ${id} as a learner`);
      return EXIT.ok;
    }),
  );
  withClientOptions(member.command('promote <id>').description('make a learner a voter')).action(
    action(setExitCode, async (id: string, flags: ClientFlags) => {
      await clientOf(flags).promote(nodeId(id));
      print(`promoted node ${id}`);
      return EXIT.ok;
    }),
  );
  withClientOptions(member.command('remove <id>').description('remove a node')).action(
    action(setExitCode, async (id: string, flags: ClientFlags) => {
      await clientOf(flags).remove(nodeId(id));
      print(`removed node ${id}`);
      return EXIT.ok;
    }),
  );
  withClientOptions(member.command('list').description('list members')).action(
    action(setExitCode, async (flags: ClientFlags) => {
      for (const m of await clientOf(flags).members()) {
        print(`${m.id}\t${m.role}\t${m.peerAddress}\t${m.clientUrl}`);
      }
      return EXIT.ok;
    }),
  );
};
