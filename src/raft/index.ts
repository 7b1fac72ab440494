/**
 * Raft as a pure core (Ongaro & Ousterhout 2014; Ongaro's dissertation 2014): elections with
 * pre-vote and check-quorum, pipelined replication with per-follower flow control, snapshots
 * streamed in chunks, single-server membership changes with learners, ReadIndex and lease
 * reads, leadership transfer. Drive `RaftCore` through the kernel `Core` contract.
 */

/** Tuning and its defaults (150–300 ms elections, 50 ms heartbeats) and validation. */
export type { RaftOptions } from './config.ts';
export { defaultRaftOptions, validateRaftOptions } from './config.ts';
/** The node: `RaftCore.create` for a fresh node, `RaftCore.restore` after a crash. */
export type { ProgressView, RaftStatus } from './core.ts';
export { RaftCore } from './core.ts';
/** What is durable, and the one function that changes it. */
export type { RaftDurableState } from './durable.ts';
export { applyPersist, cloneDurableState, initialDurableState } from './durable.ts';
/** Safety checks for simulators: figure 3's properties over node views. */
export type { RaftNodeView } from './invariants.ts';
export { checkLogMatching, RaftSafetyChecker } from './invariants.ts';
export type { RaftLogView } from './log.ts';
export { applyChange, isMember, makeConfig } from './membership.ts';
export type { ProgressState } from './progress.ts';
export type { RestoreOptions } from './state.ts';
/** The deterministic in-memory network used by the scenario tests, for other layers' tests. */
export type { NetworkOptions, TestNode } from './testing.ts';
export { Network } from './testing.ts';
export type {
  AppendMsg,
  AppendReplyMsg,
  DropReason,
  Entry,
  HardState,
  HeartbeatMsg,
  HeartbeatReplyMsg,
  MembershipChange,
  RaftConfig,
  RaftDeliver,
  RaftEvent,
  RaftMsg,
  RaftPersist,
  RaftReply,
  RaftRequest,
  RaftTypes,
  RejectReason,
  RequestVoteMsg,
  RequestVoteReplyMsg,
  Role,
  Snapshot,
  SnapshotChunkMsg,
  SnapshotChunkReplyMsg,
  SnapshotMeta,
  TimeoutNowMsg,
} from './types.ts';
