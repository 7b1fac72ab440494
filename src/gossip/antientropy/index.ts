/**
 * Anti-entropy replication cores (pure): the Merkle-repaired multi-writer map and the
 * Scuttlebutt store with flow control. Named exports only.
 */

/** Scuttlebutt flow control formulas and their defaults. */
export type { FlowConfig, RateInfo } from './flow.ts';
export { adaptRate, aimdDecrease, aimdIncrease, FLOW_DEFAULTS } from './flow.ts';
/** The pure 64-bit entry hash. */
export type { Hash64 } from './hash.ts';
export { hash64, murmur3 } from './hash.ts';
/** Hybrid logical clocks, pure (physical time is an input). */
export type { Hlc } from './hlc.ts';
export { compareHlc, hlcNext, hlcObserve } from './hlc.ts';
/** The Merkle tree over key-hash ranges. */
export type { Entry, Range, Summary } from './merkle.ts';
export { LEAVES_MAX, MerkleTree, SLOT_BITS, slotOf } from './merkle.ts';
/** The Merkle-repaired replica core. */
export type {
  MerkleDurable,
  MerkleEvent,
  MerklePersist,
  MerkleRefusal,
  MerkleReply,
  MerkleRequest,
  MerkleTypes,
} from './node.ts';
export { applyMerklePersist, initialMerkleDurable, MerkleNode } from './node.ts';
export type { MerkleConfig, TombstoneState } from './policy.ts';
export { collectTombstone, MERKLE_DEFAULTS } from './policy.ts';
export type { DropReason } from './repair.ts';
export { DROP_REASONS } from './repair.ts';
/** The Scuttlebutt store core. */
export type {
  Delta,
  Digest,
  KeyDigest,
  ScuttleConfig,
  ScuttleDurable,
  ScuttleMsg,
  ScuttleOrdering,
  ScuttlePersist,
  ScuttleRefusal,
  ScuttleReply,
  ScuttleRequest,
  ScuttleTypes,
} from './scuttlebutt.ts';
export {
  applyScuttlePersist,
  initialScuttleDurable,
  SCUTTLE_DEFAULTS,
  SCUTTLE_ORDERINGS,
  ScuttleNode,
  selectDeltas,
  selectPrecise,
} from './scuttlebutt.ts';
export { MerkleLockstep } from './testing.ts';
/** Repair messages and their wire size model. */
export type { MerkleMsg } from './wire.ts';
export { MERKLE_MSG_TYPES, messageBytes } from './wire.ts';
