import { unreachable } from '../kernel/assert.ts';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import { kindSet } from '../kernel/kinds.ts';
import type { KvCommand, KvStateMachine } from '../kv/machine.ts';
import type { MultiMsg } from '../paxos/multi/types.ts';
import { isMember } from '../raft/membership.ts';
import type { RaftConfig, RaftDeliver, RaftMsg } from '../raft/types.ts';
import type { LeaseSource } from './lessor.ts';
import {
  encodeMemberRecord,
  idOfKey,
  MEMBER_PREFIX,
  memberKey,
  REMOVED_PREFIX,
  removedKey,
  reservedKeyRefusal,
} from './members.ts';
import type { MultiKvSnapshot, MultiPaxosKvReplica, MultiPaxosKvTypes } from './multipaxos-kv.ts';
import type { RaftKvReplica, RaftKvTypes } from './raft-kv.ts';
import type { MembershipRules, RemovalRules, RoutedReplica, RouterBinding } from './router.ts';
import type { MemberChange } from './router-msgs.ts';

/**
 * What the call router needs to know of each replica (router.ts): its message kinds, how a
 * KV call is asked, who leads, and (Raft) how members are removed for good. Pure functions
 * of the replica's state, so the simulator and the real node route alike.
 */

/** Every Raft peer message kind, derived from the union (a new kind must be listed). */
export const raftMsgKinds = kindSet<RaftMsg<KvCommand>>()({
  requestVote: true,
  requestVoteReply: true,
  append: true,
  appendReply: true,
  heartbeat: true,
  heartbeatReply: true,
  snapshotChunk: true,
  snapshotChunkReply: true,
  commitHint: true,
  timeoutNow: true,
});

/** Every Multi-Paxos peer message kind, derived from the union. */
export const multiPaxosMsgKinds = kindSet<MultiMsg<KvCommand, MultiKvSnapshot>>()({
  prepare: true,
  promise: true,
  nack: true,
  accept: true,
  accepted: true,
  heartbeat: true,
  heartbeatAck: true,
  catchUp: true,
  chosenEntries: true,
  snapshot: true,
});

/** Reads the member records and tombstones a Raft KV replica keeps in its state. */
function listIds(replica: RaftKvReplica, prefix: string): NodeId[] {
  // The list cap (1,000) is far past any cluster's member count, removed ones included.
  const listed = replica.machine.read({ f: 'list', prefix, limit: 1000 });
  if (listed.f !== 'list') return [];
  const ids: NodeId[] = [];
  for (const entry of listed.entries) {
    const id = idOfKey(prefix, entry.key);
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

export const raftRemovalRules: RemovalRules<RaftKvReplica> = {
  tombstones: (replica) => listIds(replica, REMOVED_PREFIX),
  tombstonesIn(deliver) {
    const ids: NodeId[] = [];
    for (const d of deliver as readonly RaftDeliver<KvCommand>[]) {
      if (d.kind !== 'entry' || d.entry.kind !== 'normal') continue;
      const op = d.entry.data.op;
      if (op.f !== 'put') continue;
      const id = idOfKey(REMOVED_PREFIX, op.key);
      if (id !== undefined) ids.push(id);
    }
    return ids;
  },
  goneFromConfig(replica, id) {
    const s = replica.raft;
    const status = s.status();
    return status.commit >= status.configIndex && !isMember(status.config, id);
  },
  orphaned(replica) {
    const raft = replica.raft;
    return raft.knownLeader() === NO_NODE && !raft.status().config.voters.includes(replica.id);
  },
  peers(replica) {
    const config = replica.raft.status().config;
    return [...config.voters, ...config.learners, ...listIds(replica, MEMBER_PREFIX)];
  },
};

/**
 * How a Raft leader changes its membership. A new learner's addresses are committed as its
 * member record before the change, so every replica has applied them by the time it commits
 * the change; a retired id (one with a tombstone) is never added again. A removal commits the
 * member's tombstone first, then the change: no replica ever has the change without the
 * tombstone, and a tombstone whose change failed harms nothing (a member still in the
 * configuration is never told it was removed) while asking again completes it.
 */
export const raftMembershipRules: MembershipRules<RaftKvReplica, RaftKvTypes['request']> = {
  plan(replica, change) {
    const node = change.node;
    switch (change.type) {
      case 'addLearner': {
        const record = encodeMemberRecord(change);
        const retired = `node id ${node} was removed from this cluster and is retired; add the node under a new id`;
        return {
          type: 'steps',
          steps: [
            // Linearizable, so a tombstone this leader committed but has not applied counts.
            {
              type: 'refuseIfSet',
              key: removedKey(node),
              refusal: { type: 'conflict', reason: retired },
            },
            { type: 'write', cmd: { session: 0, seq: 0, op: put(memberKey(node), record) } },
            { type: 'change' },
          ],
        };
      }
      case 'promote':
        return { type: 'steps', steps: [{ type: 'change' }] };
      case 'remove':
        if (!isMember(replica.status().config, node)) {
          // A retry of a removal that went through is done; anything else is a mistake.
          if (listIds(replica, REMOVED_PREFIX).includes(node)) return { type: 'done' };
          return {
            type: 'refused',
            refusal: { type: 'conflict', reason: `node ${node} is not a member` },
          };
        }
        return {
          type: 'steps',
          steps: [
            { type: 'write', cmd: { session: 0, seq: 0, op: put(removedKey(node), '') } },
            { type: 'change' },
          ],
        };
      default:
        return unreachable(change, 'member change');
    }
  },
  visible: (replica, change) => changeVisible(replica.status().config, change),
  changeRequest: (id, change) => ({
    type: 'changeMembership',
    id,
    change: { type: change.type, node: change.node },
  }),
};

/** The machine's leases as the lessor reads them. */
function leaseSource(machine: KvStateMachine): LeaseSource {
  return { version: machine.leasesVersion, list: () => machine.leaseTtls() };
}

function put(key: string, value: string) {
  return { f: 'put', key, value } as const;
}

function changeVisible(config: RaftConfig, change: MemberChange): boolean {
  switch (change.type) {
    case 'addLearner':
      return isMember(config, change.node);
    case 'promote':
      return config.voters.includes(change.node);
    case 'remove':
      return !isMember(config, change.node);
    default:
      return unreachable(change, 'member change');
  }
}

/**
 * Raft KV: forwarded writes carry their origin (commit hints go there) and are answered by
 * the follower's own apply too; member records are reserved keys; removal is for good.
 */
export function raftKvBinding<R extends RoutedReplica<RaftKvTypes>>(
  replicaOf: (r: R) => RaftKvReplica,
): RouterBinding<RaftKvTypes, R> {
  const removal = raftRemovalRules;
  return {
    name: 'Raft',
    msgKinds: raftMsgKinds,
    kvRequest: (id, cmd, origin) => ({
      type: 'kv',
      id,
      session: cmd.session,
      seq: cmd.seq,
      op: cmd.op,
      origin,
    }),
    appliedRequest: (id, session, seq) => ({ type: 'awaitApplied', id, session, seq }),
    replyId: (reply) => reply.id,
    leader: (r) => replicaOf(r).raft.knownLeader(),
    leases: (r) => leaseSource(replicaOf(r).machine),
    admit: reservedKeyRefusal,
    removal: {
      tombstones: (r) => removal.tombstones(replicaOf(r)),
      tombstonesIn: (deliver) => removal.tombstonesIn(deliver),
      goneFromConfig: (r, id) => removal.goneFromConfig(replicaOf(r), id),
      orphaned: (r) => removal.orphaned(replicaOf(r)),
      peers: (r) => removal.peers(replicaOf(r)),
    },
    membership: {
      plan: (r, change) => raftMembershipRules.plan(replicaOf(r), change),
      visible: (r, change) => raftMembershipRules.visible(replicaOf(r), change),
      changeRequest: raftMembershipRules.changeRequest,
    },
  };
}

/** Multi-Paxos KV: a fixed membership, no reserved keys. */
export function multiPaxosKvBinding<R extends RoutedReplica<MultiPaxosKvTypes>>(
  replicaOf: (r: R) => MultiPaxosKvReplica,
): RouterBinding<MultiPaxosKvTypes, R> {
  return {
    name: 'Multi-Paxos',
    msgKinds: multiPaxosMsgKinds,
    kvRequest: (id, cmd) => ({ type: 'kv', id, session: cmd.session, seq: cmd.seq, op: cmd.op }),
    replyId: (reply) => reply.id,
    leases: (r) => leaseSource(replicaOf(r).machine),
    leader(r) {
      const paxos = replicaOf(r).paxos;
      if (paxos.isLeader()) return paxos.id;
      return paxos.leaderHint();
    },
  };
}
