import type { NodeId } from '../kernel/ids.ts';

/**
 * The Raft core's data: log entries, peer messages, client requests and replies, durable
 * writes, deliveries and observer events. Everything is plain data so hosts can encode it
 * (msgpack on the wire, JSON in traces) and tests can compare it structurally.
 */

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** A cluster configuration: voters decide elections and commits; learners only replicate. */
export interface RaftConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** One membership change at a time (Ongaro's dissertation, section 4.1). */
export type MembershipChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

/**
 * A log entry. `noop` is the entry a new leader appends to commit its predecessors' entries
 * (Raft paper section 5.4.2 / 8); a `config` entry carries the whole configuration it
 * installs, which takes effect as soon as it is appended, committed or not (dissertation 4.1).
 */
export type Entry<C> =
  | { readonly index: number; readonly term: number; readonly kind: 'normal'; readonly data: C }
  | { readonly index: number; readonly term: number; readonly kind: 'noop' }
  | {
      readonly index: number;
      readonly term: number;
      readonly kind: 'config';
      readonly change: MembershipChange;
      readonly config: RaftConfig;
    };

/** What a snapshot covers: every entry up to `index` (whose term is `term`), and its configuration. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly config: RaftConfig;
}

/** A compacted prefix of the log: the application's state at `meta.index`, as opaque bytes. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export interface HardState {
  readonly term: number;
  /** The candidate voted for in `term`, or NO_NODE. */
  readonly vote: NodeId;
  readonly commit: number;
}

// ---------------------------------------------------------------------------------------
// Peer messages. Wire names are append-only: add new kinds, never rename or reuse one.

/** RequestVote, or PreVote when `preVote` (dissertation 9.6). `term` is the proposed term for a pre-vote. */
export interface RequestVoteMsg {
  readonly type: 'requestVote';
  readonly term: number;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  readonly preVote: boolean;
  /** Sent on a leadership transfer: voters must not refuse it because they still follow a leader. */
  readonly transfer: boolean;
}

export interface RequestVoteReplyMsg {
  readonly type: 'requestVoteReply';
  readonly term: number;
  readonly granted: boolean;
  readonly preVote: boolean;
}

/** AppendEntries with entries (paper figure 2). Heartbeats travel as `heartbeat`. */
export interface AppendMsg<C> {
  readonly type: 'append';
  readonly term: number;
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry<C>[];
  readonly commit: number;
}

/**
 * The answer to an `append` or the completion of a snapshot install. On success `index` is
 * the last index known to match the leader. On failure `rejectedIndex` is the prevIndex that
 * did not match and (`hintIndex`, `hintTerm`) the fast-backtracking hint (section 5.3, the
 * "conflicting term" optimisation): the follower's first index of `hintTerm`, or its lastIndex+1
 * with hintTerm 0 when its log is too short.
 */
export type AppendReplyMsg =
  | {
      readonly type: 'appendReply';
      readonly term: number;
      readonly success: true;
      readonly index: number;
    }
  | {
      readonly type: 'appendReply';
      readonly term: number;
      readonly success: false;
      readonly rejectedIndex: number;
      readonly hintIndex: number;
      readonly hintTerm: number;
    };

/**
 * An empty AppendEntries: asserts leadership, carries the commit index (never beyond what the
 * follower is known to hold) and a read round number `round` for ReadIndex / leases. Round 0
 * is a commit notice only, and followers do not answer it.
 */
export interface HeartbeatMsg {
  readonly type: 'heartbeat';
  readonly term: number;
  readonly commit: number;
  readonly round: number;
}

export interface HeartbeatReplyMsg {
  readonly type: 'heartbeatReply';
  readonly term: number;
  readonly round: number;
}

/** One chunk of an InstallSnapshot (paper section 7), `offset` bytes into the snapshot data. */
export interface SnapshotChunkMsg {
  readonly type: 'snapshotChunk';
  readonly term: number;
  readonly meta: SnapshotMeta;
  readonly totalBytes: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

/** Acknowledges chunks: the follower holds the first `nextOffset` bytes of the snapshot at `index`. */
export interface SnapshotChunkReplyMsg {
  readonly type: 'snapshotChunkReply';
  readonly term: number;
  readonly index: number;
  readonly nextOffset: number;
}

/**
 * A commit hint: entries up to `index` are durable on a quorum if the receiver is counted as
 * holding everything the leader sent it. The receiver commits as far as its own durable log
 * matches the leader's, when that entry is of the leader's term (figure 8: counting proves
 * nothing for an older term's entry). A follower that forwarded a client's write learns the
 * outcome one message after the quorum forms, instead of an ack's round trip through the
 * leader later.
 */
export interface CommitHintMsg {
  readonly type: 'commitHint';
  readonly term: number;
  readonly index: number;
}

/** Leadership transfer: the target starts an election at once (dissertation 3.10). */
export interface TimeoutNowMsg {
  readonly type: 'timeoutNow';
  readonly term: number;
}

export type RaftMsg<C> =
  | RequestVoteMsg
  | RequestVoteReplyMsg
  | AppendMsg<C>
  | AppendReplyMsg
  | HeartbeatMsg
  | HeartbeatReplyMsg
  | SnapshotChunkMsg
  | SnapshotChunkReplyMsg
  | CommitHintMsg
  | TimeoutNowMsg;

// ---------------------------------------------------------------------------------------
// Client requests and replies. Every request carries an id chosen by the client; every
// reply echoes it so a host can route the answer.

export type RaftRequest<C> =
  /**
   * Append `data` to the log (leader only). `origin`: the follower that forwarded it for its
   * client; it gets commit hints for the entry (see `CommitHintMsg`).
   */
  | {
      readonly type: 'propose';
      readonly id: number;
      readonly data: C;
      readonly origin?: NodeId | undefined;
    }
  /** A linearizable read: answered by `readReady` once safe; serve it when applied >= index. */
  | { readonly type: 'read'; readonly id: number }
  | { readonly type: 'transferLeadership'; readonly id: number; readonly to: NodeId }
  | { readonly type: 'changeMembership'; readonly id: number; readonly change: MembershipChange }
  /** The application's state at applied index `index` as bytes: compact the log up to there. */
  | {
      readonly type: 'compact';
      readonly id: number;
      readonly index: number;
      readonly data: Uint8Array;
    }
  /** Start an election now (skips the timeout; pre-vote still applies). */
  | { readonly type: 'campaign'; readonly id: number };

export type RejectReason =
  /** Too many entries appended but not yet committed (`uncommittedEntriesMax`). */
  | 'uncommitted-cap'
  | 'transfer-in-progress'
  /** Another membership change is not yet committed, or this term has committed nothing yet. */
  | 'change-in-progress'
  | 'invalid-change'
  | 'learner-not-caught-up'
  /** Too many reads waiting for confirmation (`pendingReadsMax`). */
  | 'read-cap'
  | 'unknown-peer'
  | 'compact-out-of-range'
  | 'snapshot-too-large'
  | 'not-a-voter';

export type RaftReply =
  /** Appended at (index, term); it took effect if and when that entry is delivered. */
  | {
      readonly type: 'accepted';
      readonly id: number;
      readonly index: number;
      readonly term: number;
    }
  /** Not the leader; `leaderHint` is the leader this node follows, or NO_NODE if unknown. */
  | { readonly type: 'notLeader'; readonly id: number; readonly leaderHint: NodeId }
  /** The read is linearizable once the host's state machine has applied `index`. */
  | { readonly type: 'readReady'; readonly id: number; readonly index: number }
  | { readonly type: 'rejected'; readonly id: number; readonly reason: RejectReason }
  /** A compaction, campaign or transfer request was carried out or started. */
  | { readonly type: 'done'; readonly id: number };

// ---------------------------------------------------------------------------------------
// Durable writes, deliveries and events.

/**
 * One durable write, in batch order:
 * - `hardState`: replace the hard state.
 * - `entries`: drop every durable entry with index >= `entries[0].index`, then append `entries`.
 * - `snapshot`: store the snapshot; keep the entries after it only if the durable log holds
 *   (meta.index, meta.term), otherwise drop the whole log (see `applyPersist`).
 */
export type RaftPersist<C> =
  | { readonly kind: 'hardState'; readonly state: HardState }
  | { readonly kind: 'entries'; readonly entries: readonly Entry<C>[] }
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot };

/** Applied by the host's state machine strictly in order, each exactly once. */
export type RaftDeliver<C> =
  | { readonly kind: 'entry'; readonly entry: Entry<C> }
  /** Replace the application's state with the snapshot's; later entries follow it. */
  | { readonly kind: 'snapshot'; readonly snapshot: Snapshot };

export type DropReason =
  | 'stale-term'
  | 'unknown-peer'
  | 'stale-reply'
  | 'leader-lease'
  | 'snapshot-too-large'
  | 'snapshot-out-of-order';

export type RaftEvent =
  | {
      readonly type: 'roleChanged';
      readonly role: Role;
      readonly term: number;
      readonly leader: NodeId;
    }
  | { readonly type: 'electionStarted'; readonly term: number; readonly preVote: boolean }
  | { readonly type: 'elected'; readonly term: number }
  | { readonly type: 'committed'; readonly index: number; readonly term: number }
  | { readonly type: 'configChanged'; readonly config: RaftConfig; readonly index: number }
  | { readonly type: 'snapshotInstalled'; readonly index: number; readonly term: number }
  | { readonly type: 'transferAborted'; readonly to: NodeId; readonly term: number }
  | {
      readonly type: 'dropped';
      readonly from: NodeId;
      readonly msg: RaftMsg<unknown>['type'];
      readonly reason: DropReason;
    };

/** The `CoreTypes` instance for Raft, with `C` the application's command type. */
export interface RaftTypes<C> {
  readonly msg: RaftMsg<C>;
  readonly persist: RaftPersist<C>;
  readonly deliver: RaftDeliver<C>;
  readonly request: RaftRequest<C>;
  readonly reply: RaftReply;
  readonly event: RaftEvent;
}
