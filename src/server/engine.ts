import type { NodeId } from '../kernel/ids.ts';
import type { AuthView, KvCommand, KvFeedChange, KvReadOp, KvResult } from '../kv/machine.ts';
import { describeRefusal, type Refusal } from '../replica/refusal.ts';

/**
 * The seam between the key-value service (HTTP API, metrics, CLI) and whatever orders its
 * commands. Raft and Multi-Paxos nodes each implement it on top of the runtime (WAL,
 * transport, timers), so the service, the client and the end-to-end tests are shared.
 */
export interface KvEngine {
  readonly id: NodeId;
  /**
   * Orders `cmd` through consensus and resolves with its result once it is applied (on a
   * follower, the engine hands it to the leader itself). Rejects with a `RefusedError`:
   * `notLeader` when this node does not lead and could not forward it (the server answers
   * 421 naming the leader, and the client goes there), `overloaded`, `retry` when nothing applied in time, and
   * `outcomeUnknown` when a write may have been applied all the same.
   */
  write(cmd: KvCommand): Promise<KvResult>;
  /**
   * A linearizable read (ReadIndex or a leader lease) or a local stale read. Linearizable
   * reads reject like `write` does.
   */
  read(op: KvReadOp, consistency: ReadConsistency): Promise<KvResult>;
  /**
   * Calls `onChange` for every change after `fromRevision`, first the ones already applied,
   * then new ones as they are applied here, each with the key's state after and before it
   * (etcd's watch events are made of those). Returns 'compacted' when changes after
   * `fromRevision` are no longer kept.
   */
  watch(fromRevision: number, onChange: (change: KvFeedChange) => void): WatchHandle | 'compacted';
  status(): EngineStatus;
  /**
   * The leader's client URL when another node leads: answers the engine forwarded itself
   * name it, so clients can go there directly next time.
   */
  leaderHint?(): string | undefined;
  /**
   * The auth store as this node has applied it, read-only (tokens and reads are checked
   * against it at the edge). Absent: the engine cannot serve auth, and it stays off.
   */
  authView?(): AuthView;
  /** Membership changes; leader only (a `notLeader` refusal otherwise). */
  addLearner(member: MemberAddress): Promise<void>;
  promote(id: NodeId): Promise<void>;
  remove(id: NodeId): Promise<void>;
}

export type ReadConsistency = 'linearizable' | 'stale';

export interface WatchHandle {
  cancel(): void;
}

export interface MemberAddress {
  readonly id: NodeId;
  /** host:port of the member's peer (consensus) listener. */
  readonly peerAddress: string;
  /** Base URL of the member's client API, e.g. http://127.0.0.1:2379. */
  readonly clientUrl: string;
}

export interface MemberStatus extends MemberAddress {
  readonly role: 'voter' | 'learner';
}

export interface PeerProgress {
  readonly id: NodeId;
  /** Highest log index known to be replicated on the peer. */
  readonly match: number;
  /** Next index the leader will send. */
  readonly next: number;
  readonly state: string;
  readonly recentActive: boolean;
}

export interface EngineStatus {
  readonly id: NodeId;
  readonly protocol: 'raft' | 'multipaxos';
  readonly role: string;
  readonly term: number;
  /** 0 when no leader is known. */
  readonly leader: NodeId;
  readonly leaderClientUrl: string | undefined;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly revision: number;
  readonly members: readonly MemberStatus[];
  /** Present on the leader. */
  readonly progress: readonly PeerProgress[] | undefined;
}

/**
 * A call that got no result, and why, in the one refusal vocabulary (src/replica/refusal.ts):
 * what engines reject with, and what only the HTTP layer (errors.ts) turns into a status.
 * `leaderClientUrl`: where the leader a `notLeader` refusal names listens, when known.
 */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
  constructor(
    readonly refusal: Refusal,
    readonly leaderClientUrl?: string,
  ) {
    super(describeRefusal(refusal));
  }
}
