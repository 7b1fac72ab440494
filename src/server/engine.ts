import type { NodeId } from '../kernel/ids.ts';
import type { KvChange, KvCommand, KvOp, KvResult } from '../kv/machine.ts';

/**
 * The seam between the key-value service (HTTP API, metrics, CLI) and whatever orders its
 * commands. Raft and Multi-Paxos nodes each implement it on top of the runtime (WAL,
 * transport, timers), so the service, the client and the end-to-end tests are shared.
 */
export interface KvEngine {
  readonly id: NodeId;
  /**
   * Orders `cmd` through consensus and resolves with its result once it is applied (on a
   * follower, the engine may hand it to the leader itself). Rejects with NotLeaderError when
   * this node does not lead and did not forward it (the server then relays it over HTTP),
   * with OverloadedError when the engine refuses more uncommitted work, and with
   * UnavailableError when no leader can be reached in time (UnknownOutcomeError when a write
   * may have been applied all the same).
   */
  write(cmd: KvCommand): Promise<KvResult>;
  /**
   * A linearizable read (ReadIndex or a leader lease) or a local stale read. Linearizable
   * reads reject like `write` does.
   */
  read(
    op: Extract<KvOp, { f: 'get' } | { f: 'list' }>,
    consistency: ReadConsistency,
  ): Promise<KvResult>;
  /**
   * Calls `onChange` for every change after `fromRevision`, first the ones already applied,
   * then new ones as they are applied here. Returns 'compacted' when changes after
   * `fromRevision` are no longer kept.
   */
  watch(fromRevision: number, onChange: (change: KvChange) => void): WatchHandle | 'compacted';
  status(): EngineStatus;
  /**
   * The leader's client URL when another node leads: answers the engine forwarded itself
   * name it, so clients can go there directly next time.
   */
  leaderHint?(): string | undefined;
  /** Membership changes; leader only (NotLeaderError otherwise). */
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

/** This node is not the leader; `leaderClientUrl` says where to go, when known. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  constructor(
    readonly leader: NodeId,
    readonly leaderClientUrl: string | undefined,
  ) {
    super(leader === 0 ? 'no leader is known' : `node ${leader} is the leader`);
  }
}

/** The engine refuses more work until some commits (a bounded uncommitted queue is full). */
export class OverloadedError extends Error {
  override readonly name = 'OverloadedError';
}

/** No answer in time: the outcome of a write is unknown (it may still be applied). */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
}

/** No answer in time for a write that may have been applied all the same (504 to a client). */
export class UnknownOutcomeError extends UnavailableError {}

/** The engine does not implement this call (Multi-Paxos has no membership change). */
export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
}
