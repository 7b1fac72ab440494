import { assert, unreachable } from '../kernel/assert.ts';
import { assertNodeId, type NodeId } from '../kernel/ids.ts';
import type { MembershipChange, RaftConfig } from './types.ts';

/** A configuration from explicit lists, checked: no duplicates, no node both voter and learner. */
export function makeConfig(
  voters: readonly NodeId[],
  learners: readonly NodeId[] = [],
): RaftConfig {
  for (const id of [...voters, ...learners]) assertNodeId(id);
  const all = new Set([...voters, ...learners]);
  assert(all.size === voters.length + learners.length, 'a node appears twice in the configuration');
  return {
    voters: [...voters].sort((a, b) => a - b),
    learners: [...learners].sort((a, b) => a - b),
  };
}

export function isMember(config: RaftConfig, id: NodeId): boolean {
  return config.voters.includes(id) || config.learners.includes(id);
}

/** Every member except `self`: the peers a leader replicates to. */
export function peersOf(config: RaftConfig, self: NodeId): NodeId[] {
  return [...config.voters, ...config.learners].filter((id) => id !== self);
}

/**
 * The configuration after one single-server change (dissertation 4.1): add a learner, promote
 * a learner to voter, or remove a node. A change that would leave no voter, or that names a
 * node in the wrong state, is refused (undefined).
 */
export function applyChange(config: RaftConfig, change: MembershipChange): RaftConfig | undefined {
  const { node } = change;
  switch (change.type) {
    case 'addLearner':
      if (isMember(config, node)) return undefined;
      return makeConfig(config.voters, [...config.learners, node]);
    case 'promote':
      if (!config.learners.includes(node)) return undefined;
      return makeConfig(
        [...config.voters, node],
        config.learners.filter((id) => id !== node),
      );
    case 'remove': {
      if (!isMember(config, node)) return undefined;
      const voters = config.voters.filter((id) => id !== node);
      if (voters.length === 0) return undefined;
      return makeConfig(
        voters,
        config.learners.filter((id) => id !== node),
      );
    }
    default:
      return unreachable(change, 'membership change');
  }
}

export function sameConfig(a: RaftConfig, b: RaftConfig): boolean {
  const eq = (x: readonly NodeId[], y: readonly NodeId[]) =>
    x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a.voters, b.voters) && eq(a.learners, b.learners);
}
