/**
 * The shared kernel: identities, the message envelope, seeded randomness, quorum math and
 * the contract every protocol core implements. Pure: no I/O, clocks or timers.
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
