import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import { kindSet } from '../kernel/kinds.ts';
import type { KvCommand } from '../kv/machine.ts';
import type { MultiMsg } from '../paxos/multi/types.ts';
import { isMember } from '../raft/membership.ts';
import type { RaftDeliver, RaftMsg } from '../raft/types.ts';
import { idOfKey, MEMBER_PREFIX, REMOVED_PREFIX, reservedKeyRefusal } from './members.ts';
import type { MultiKvSnapshot, MultiPaxosKvReplica, MultiPaxosKvTypes } from './multipaxos-kv.ts';
import type { RaftKvReplica, RaftKvTypes } from './raft-kv.ts';
import type { RemovalRules, RoutedReplica, RouterBinding } from './router.ts';

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
 * Raft KV: forwarded writes carry their origin (commit hints go there) and are answered by
 * the follower's own apply too; member records are reserved keys; removal is for good.
 */
export function raftKvBinding<R extends RoutedReplica<RaftKvTypes>>(
  replicaOf: (r: R) => RaftKvReplica,
): RouterBinding<RaftKvTypes, R> {
  const removal = raftRemovalRules;
  return {
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
    admit: reservedKeyRefusal,
    removal: {
      tombstones: (r) => removal.tombstones(replicaOf(r)),
      tombstonesIn: (deliver) => removal.tombstonesIn(deliver),
      goneFromConfig: (r, id) => removal.goneFromConfig(replicaOf(r), id),
      orphaned: (r) => removal.orphaned(replicaOf(r)),
      peers: (r) => removal.peers(replicaOf(r)),
    },
  };
}

/** Multi-Paxos KV: a fixed membership, no reserved keys. */
export function multiPaxosKvBinding<R extends RoutedReplica<MultiPaxosKvTypes>>(
  replicaOf: (r: R) => MultiPaxosKvReplica,
): RouterBinding<MultiPaxosKvTypes, R> {
  return {
    msgKinds: multiPaxosMsgKinds,
    kvRequest: (id, cmd) => ({ type: 'kv', id, session: cmd.session, seq: cmd.seq, op: cmd.op }),
    replyId: (reply) => reply.id,
    leader(r) {
      const paxos = replicaOf(r).paxos;
      if (paxos.isLeader()) return paxos.id;
      return paxos.leaderHint() ?? NO_NODE;
    },
  };
}
