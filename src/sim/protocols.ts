import type { CoreTypes } from '../kernel/core.ts';
import { merkleSim } from './antientropy/merkle.ts';
import { scuttlebuttSim } from './antientropy/scuttlebutt.ts';
import { gossipSim } from './gossip/plugin.ts';
import { basicPaxosSim } from './paxos/basic.ts';
import { fastPaxosSim } from './paxos/fast.ts';
import { multiPaxosSim } from './paxos/multi.ts';
import type { SimProtocol } from './protocol.ts';
import { raftSim } from './raft/plugin.ts';
import { primaryBackup } from './reference/plugin.ts';
import { totemKvSim } from './totem/kv.ts';
import { totemSim } from './totem/plugin.ts';
import { brokenVariants } from './variants.ts';

/** A registered protocol with its types erased, so different families share one table. */
export type AnySimProtocol = SimProtocol<CoreTypes, unknown>;

/**
 * Protocols the simulator can run, by the name `quorate sim <protocol>` takes. Each family
 * adds its plugin here (raft, paxos, gossip, totem); `primary-backup` is the test fixture
 * that proves the harness catches an unsafe protocol.
 */
export const protocols: ReadonlyMap<string, AnySimProtocol> = new Map<string, AnySimProtocol>([
  [raftSim.name, raftSim as unknown as AnySimProtocol],
  [primaryBackup.name, primaryBackup],
  [basicPaxosSim.name, basicPaxosSim as unknown as AnySimProtocol],
  [fastPaxosSim.name, fastPaxosSim as unknown as AnySimProtocol],
  [multiPaxosSim.name, multiPaxosSim as unknown as AnySimProtocol],
  [gossipSim.name, gossipSim as unknown as AnySimProtocol],
  [totemSim.name, totemSim as unknown as AnySimProtocol],
  [totemKvSim.name, totemKvSim as unknown as AnySimProtocol],
  [scuttlebuttSim.name, scuttlebuttSim as unknown as AnySimProtocol],
  [merkleSim.name, merkleSim as unknown as AnySimProtocol],
]);

/** A registered protocol, or one of the broken variants (src/sim/variants.ts) by its name. */
export function findProtocol(name: string): AnySimProtocol | undefined {
  return protocols.get(name) ?? brokenVariants.get(name);
}
