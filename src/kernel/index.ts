/**
 * The shared kernel: identities, the message envelope, seeded randomness, quorum math and
 * the contract every protocol core implements. Pure: no I/O, clocks or timers.
 *
 * Names every layer spells one way:
 * - Limits end in `…Max`, the unit before it: `callsMax`, `bodyBytesMax`, `pendingReadsMax`.
 *   A longest duration keeps its unit last: `electionTimeoutMaxMs`, `backoffMaxMs`.
 * - Durations end in their unit: `timeoutMs`, `retryPauseMs`, `leaseDurationMs`.
 * - Points in time (a `now` plus a duration) end in `At`: `deadlineAt`, `resumeAt`,
 *   `expiresAt`, `nextProbeAt`. `Core.deadline()` is the one exception, the contract's name
 *   for the earliest such point a core waits for.
 * - "No node" (no leader known, no vote cast) is `NO_NODE`, never `null`, `0` or `-1`.
 * - A request's id, the number its reply echoes, is `id` in every core, replica, router
 *   request and reply; the client's exactly-once pair is `session` and `seq`.
 */
export { assert, InvariantError, unreachable } from './assert.ts';
export type { Core, CoreTypes, Ready, Reply } from './core.ts';
export { OutputBuffer } from './core.ts';
export type { Envelope, Outgoing } from './envelope.ts';
export type { ClientId, NodeId } from './ids.ts';
export { assertNodeId, isNodeId, NO_NODE, NODE_ID_MAX, nodeIds } from './ids.ts';
export type { QuorumSystem, VoteResult } from './quorum.ts';
export {
  committedIndex,
  ExplicitQuorum,
  fastPaxosQuorumSizes,
  jointCommittedIndex,
  majority,
  quorumsIntersect,
  quorumsIntersectByEnumeration,
  ThresholdQuorum,
  voteResult,
} from './quorum.ts';
export type { RngState } from './rng.ts';
export { Rng } from './rng.ts';
