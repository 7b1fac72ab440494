import type { Json } from '../../check/history.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { KvCommand } from '../../kv/machine.ts';
import { defaultRaftOptions, type RaftOptions } from '../../raft/config.ts';
import {
  cloneDurableState,
  initialDurableState,
  type RaftDurableState,
  applyPersist as raftApplyPersist,
} from '../../raft/durable.ts';
import { type RaftNodeView, RaftSafetyChecker } from '../../raft/invariants.ts';
import { raftKvBinding } from '../../replica/bindings.ts';
import { removedKey } from '../../replica/members.ts';
import {
  defaultReplicaOptions,
  RaftKvReplica,
  type RaftKvTypes,
  type ReplicaOptions,
} from '../../replica/raft-kv.ts';
import {
  defaultRouterOptions,
  Router,
  type RouterOptions,
  type RouterTypes,
  type RouterUnsafeTestingFaults,
} from '../../replica/router.ts';
import type {
  ClusterView,
  Monitor,
  ProtocolFault,
  SimProtocol,
  WorkloadContext,
} from '../protocol.ts';
import { KvWorkload } from '../workload/kv.ts';
import { defaultLeaseSettings, withLeaseClient } from '../workload/lease.ts';
import { linearizabilityCheck } from '../workload/linearizable.ts';
import { routedKvAdapter } from '../workload/routed.ts';

/**
 * `quorate sim raft`: the key-value replica (Raft + state machine, src/replica) under the
 * simulator. After every step the cluster is checked against the Raft paper's figure 3
 * (Election Safety, Log Matching, Leader Completeness, State Machine Safety) plus Leader
 * Append-Only; at the end the clients' history must be linearizable.
 */
export type RaftDurable = RaftDurableState<KvCommand>;

/** Sim-friendly sizes: commands are small objects, snapshots every few hundred entries. */
export function simRaftOptions(
  overrides: Partial<RaftOptions<KvCommand>> = {},
): RaftOptions<KvCommand> {
  return { ...defaultRaftOptions<KvCommand>(commandBytes), ...overrides };
}

function commandBytes(cmd: KvCommand): number {
  const op = cmd.op;
  const value = 'value' in op ? op.value.length : 0;
  return 32 + op.f.length + ('key' in op ? op.key.length : 0) + value;
}

/** A simulated Raft node, hosted whole: the call router in front of the KV replica. */
export type RaftNodeTypes = RouterTypes<RaftKvTypes>;
export type RaftNode = Router<RaftKvTypes, RaftKvReplica>;

/**
 * How long a simulated node's router works on one call: less than a client's attempt
 * timeout (400 ms), so the client hears how it ended before it gives up on the attempt.
 */
export const SIM_CALL_TIMEOUT_MS = 300;

export const raftRouterBinding = raftKvBinding<RaftKvReplica>((r) => r);

/** The replica inside the simulated node `core` (undefined while the node is down). */
function replicaOf(core: unknown): RaftKvReplica | undefined {
  return (core as RaftNode | undefined)?.replica;
}

/** The disk of a member of the initial cluster before its first write. */
function bootstrapDurable(members: readonly NodeId[]): RaftDurable {
  return initialDurableState<KvCommand>({ voters: [...members], learners: [] });
}

function views(view: ClusterView<RaftNodeTypes, RaftDurable>): RaftNodeView<KvCommand>[] {
  const out: RaftNodeView<KvCommand>[] = [];
  for (const id of view.members) {
    const core = replicaOf(view.core(id));
    if (core !== undefined) out.push({ status: core.status(), log: core.raft.log() });
  }
  return out;
}

/**
 * Leader Append-Only (figure 3): while a node leads a term, it never overwrites or deletes
 * entries in its log. Tracked per node as the last index and term seen while leading.
 */
class LeaderAppendOnly {
  private readonly seen = new Map<NodeId, { term: number; index: number; entryTerm: number }>();

  check(core: RaftKvReplica): string | undefined {
    const s = core.status();
    const log = core.raft.log();
    const prev = this.seen.get(s.id);
    if (s.role !== 'leader') {
      this.seen.delete(s.id);
      return undefined;
    }
    if (prev !== undefined && prev.term === s.term && prev.index > log.snapshotIndex) {
      const term = log.term(prev.index);
      if (log.lastIndex < prev.index || term !== prev.entryTerm) {
        return `leader append-only: leader ${s.id} of term ${s.term} lost or rewrote entry ${prev.index}`;
      }
    }
    this.seen.set(s.id, {
      term: s.term,
      index: log.lastIndex,
      entryTerm: log.term(log.lastIndex) ?? 0,
    });
    return undefined;
  }

  forget(node: NodeId): void {
    this.seen.delete(node);
  }
}

function raftMonitor(
  view: ClusterView<RaftNodeTypes, RaftDurable>,
): Monitor<RaftNodeTypes, RaftDurable> {
  const safety = new RaftSafetyChecker();
  const appendOnly = new LeaderAppendOnly();
  return {
    onDeliver(node, item) {
      return safety.delivered(node, item)[0];
    },
    onCrash(node) {
      safety.restarted(node);
      appendOnly.forget(node);
    },
    afterStep(v, node) {
      const core = replicaOf(v.core(node));
      if (core !== undefined) {
        const violation = appendOnly.check(core);
        if (violation !== undefined) return violation;
      }
      return safety.observe(views(view))[0];
    },
  };
}

/**
 * Membership churn for the nemesis: remove a voter, re-add it as a learner, promote it. Half
 * the removals are for good, and those and the additions go through the router as a client
 * asks them of a real node (src/replica/router-members.ts), at any member: the tombstone (or
 * the learner's record) is committed first, then the change, and a removed id is never added
 * back; the router then tells the member, forgets it and answers its messages with
 * `removed`, whether it is up or down at the time. The other removals and promotions are
 * plain configuration changes at the leader, so that removed members come back.
 */
const membershipFault: ProtocolFault<RaftNodeTypes, RaftDurable> = {
  name: 'membership',
  apply(control, rng) {
    const leader = control.view.members
      .map((id) => replicaOf(control.view.core(id)))
      .find((c) => c?.status().role === 'leader');
    if (leader === undefined) return undefined;
    const { voters, learners } = leader.status().config;
    const retired = (id: NodeId) => leader.machine.read({ f: 'get', key: removedKey(id) });
    const removed = control.view.members.filter((id) => {
      if (voters.includes(id) || learners.includes(id)) return false;
      const tombstone = retired(id);
      return tombstone.f === 'get' && tombstone.entry === null;
    });
    let change: { type: 'addLearner' | 'promote' | 'remove'; node: NodeId } | undefined;
    if (learners.length > 0) change = { type: 'promote', node: rng.pick(learners) };
    else if (removed.length > 0) change = { type: 'addLearner', node: rng.pick(removed) };
    else if (voters.length > 3) change = { type: 'remove', node: rng.pick(voters) };
    if (change === undefined) return undefined;
    const forGood = change.type === 'remove' && rng.int(2) === 0;
    if (forGood || change.type === 'addLearner') {
      // As a client asks it, of any member that is up: a follower forwards it to the leader,
      // which commits the tombstone (or the learner's record) before the change.
      const up = control.view.members.filter(
        (id) => replicaOf(control.view.core(id)) !== undefined,
      );
      const at = rng.pick(up);
      const member =
        change.type === 'addLearner'
          ? { ...change, peerAddress: '', clientUrl: '' }
          : { type: change.type, node: change.node };
      control.request(at, {
        type: 'member',
        id: 0,
        change: member,
        timeoutMs: SIM_CALL_TIMEOUT_MS,
        forward: true,
      });
      return { at, ...change, ...(forGood ? { forGood } : {}) } as Json;
    }
    control.request(leader.id, {
      type: 'replica',
      req: { type: 'changeMembership', id: 0, change },
    });
    return { leader: leader.id, ...change, ...(forGood ? { forGood } : {}) } as Json;
  },
};

export interface RaftSimSettings {
  readonly name: string;
  readonly description: string;
  readonly raft: Partial<RaftOptions<KvCommand>>;
  readonly replica: ReplicaOptions;
  /** Deliberate bugs in the call router, for the broken-variant tests. */
  readonly router?: RouterUnsafeTestingFaults;
}

/** Builds the plugin; tests build variants (a deliberately broken commit rule) the same way. */
export function raftSimProtocol(
  settings: RaftSimSettings,
): SimProtocol<RaftNodeTypes, RaftDurable> {
  const raftOptions = simRaftOptions(settings.raft);
  const routerOptions: RouterOptions = {
    ...defaultRouterOptions,
    callTimeoutMs: SIM_CALL_TIMEOUT_MS,
    ...(settings.router === undefined ? {} : { unsafeTestingFaults: settings.router }),
  };
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,
    faults: [membershipFault],

    createCore(init) {
      // A node that never persisted anything boots exactly like a fresh one.
      const durable = init.durable ?? bootstrapDurable(init.members);
      const replica = RaftKvReplica.restore(
        init.id,
        cloneDurableState(durable),
        raftOptions,
        init.rng,
        settings.replica,
      );
      return new Router(replica, raftRouterBinding, routerOptions);
    },

    emptyDurable(init) {
      return bootstrapDurable(init.members);
    },

    applyPersist(durable, item) {
      raftApplyPersist(durable, item);
      return durable;
    },

    createMonitor: raftMonitor,

    createWorkload(ctx) {
      const kv = (c: WorkloadContext) =>
        new KvWorkload<RaftNodeTypes>(
          c,
          routedKvAdapter<RaftKvTypes>(SIM_CALL_TIMEOUT_MS),
          linearizabilityCheck(),
        );
      // Past the TTL after healing: one election (300 ms at most) and one poll (100 ms). The
      // latest seen in 300 seeds at 5 nodes, all faults, was 236 ms.
      const leases = { ...defaultLeaseSettings, revokeSlackMs: 400 };
      return withLeaseClient<RaftKvTypes>(ctx, kv, SIM_CALL_TIMEOUT_MS, leases);
    },

    describeMessage(msg) {
      // Snapshot bytes would bloat the trace; their size is what a viewer needs.
      if (msg.type === 'snapshotChunk') {
        const { data, ...rest } = msg;
        return { ...rest, bytes: data.length } as unknown as Json;
      }
      return msg as unknown as Json;
    },
  };
}

export const raftSim = raftSimProtocol({
  name: 'raft',
  description:
    'Raft (pre-vote, check-quorum, ReadIndex, snapshots, membership) under a key-value workload',
  // As real nodes run it (src/cli/commands/node.ts): commit notices held back 10 ms, commit
  // hints to the follower that forwarded a write (which answers its client from its apply).
  raft: { commitNoticeDelayMs: 10, commitHints: 'origin' },
  replica: { ...defaultReplicaOptions, snapshotEveryEntries: 200 },
});
