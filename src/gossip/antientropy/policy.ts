import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { assertNodeId } from '../../kernel/ids.ts';
import { SLOT_BITS } from './merkle.ts';

export interface MerkleConfig {
  readonly id: NodeId;
  /** Every node that may replicate this map (unknown senders are dropped). */
  readonly members: readonly NodeId[];
  /** Longest key, UTF-8 bytes. Default 256. */
  readonly keyBytesMax: number;
  /** Longest value, bytes. Default 16 KiB. */
  readonly valueBytesMax: number;
  /** Most entries (tombstones included) a replica holds. Default 2^24. */
  readonly entriesMax: number;
  /** A tree leaf splits above this many keys. Default 128 (leaves of ~64..128 keys). */
  readonly leafKeysMax: number;
  /** A differing range with at most this many keys on both sides is listed, not descended. Default 64. */
  readonly listKeysMax: number;
  /** Largest repair message, bytes of the wire model (wire.ts). Default 64 KiB. */
  readonly messageBytesMax: number;
  /** One repair with a random live peer this often. Default 1 000 ms. */
  readonly repairIntervalMs: number;
  /** A tombstone is kept at least this long. Default 24 h. */
  readonly tombstoneTtlMs: number;
  /** Remote versions further ahead of our clock are dropped. Default 60 000 ms. */
  readonly clockDriftMaxMs: number;
  /** The durable clock bound moves in steps of this (one write per step). Default 10 000 ms. */
  readonly clockBlockMs: number;
  /**
   * Local writes (puts and deletes) per second this replica accepts, held by a token bucket
   * of `writeBurstMax` tokens; above it a write is refused `rate-limited` with the time
   * until the next token, never queued. Undefined (the default): no limit.
   */
  readonly writeRatePerSecondMax?: number;
  /** Tokens the write bucket holds (a burst). Default 100 when a rate is set. */
  readonly writeBurstMax?: number;
}

export const MERKLE_DEFAULTS = {
  keyBytesMax: 256,
  valueBytesMax: 16 * 1024,
  entriesMax: 2 ** 24,
  leafKeysMax: 128,
  listKeysMax: 64,
  messageBytesMax: 64 * 1024,
  repairIntervalMs: 1_000,
  tombstoneTtlMs: 24 * 60 * 60 * 1_000,
  clockDriftMaxMs: 60_000,
  clockBlockMs: 10_000,
} as const satisfies Omit<MerkleConfig, 'id' | 'members'>;

/** Bytes of the largest entry in the wire model: it must fit one message. */
export function entryBytesMax(config: Pick<MerkleConfig, 'keyBytesMax' | 'valueBytesMax'>): number {
  return 2 + config.keyBytesMax + 16 + 1 + 4 + config.valueBytesMax;
}

function positiveInt(value: number, name: string): void {
  assert(
    Number.isSafeInteger(value) && value >= 1,
    `${name} must be a positive integer, got ${value}`,
  );
}

export function validateMerkleConfig(c: MerkleConfig): void {
  assertNodeId(c.id, 'id');
  for (const m of c.members) assertNodeId(m, 'member');
  assert(c.members.includes(c.id), 'members must include this node');
  assert(new Set(c.members).size === c.members.length, 'members must be distinct');
  positiveInt(c.keyBytesMax, 'keyBytesMax');
  assert(c.keyBytesMax <= 0xffff, 'keyBytesMax fits its 2-byte length');
  positiveInt(c.valueBytesMax, 'valueBytesMax');
  positiveInt(c.entriesMax, 'entriesMax');
  positiveInt(c.leafKeysMax, 'leafKeysMax');
  assert(c.leafKeysMax >= 2, 'leafKeysMax must be at least 2');
  positiveInt(c.listKeysMax, 'listKeysMax');
  positiveInt(c.messageBytesMax, 'messageBytesMax');
  // 16 bytes of header slack; a hashes message must carry one range's 16 children.
  assert(
    c.messageBytesMax >= entryBytesMax(c) + 16 + 64 && c.messageBytesMax >= 16 * 16 + 32,
    `messageBytesMax (${c.messageBytesMax}) must fit the largest entry (${entryBytesMax(c)} bytes) and a key list`,
  );
  positiveInt(c.repairIntervalMs, 'repairIntervalMs');
  positiveInt(c.tombstoneTtlMs, 'tombstoneTtlMs');
  positiveInt(c.clockDriftMaxMs, 'clockDriftMaxMs');
  positiveInt(c.clockBlockMs, 'clockBlockMs');
  if (c.writeRatePerSecondMax !== undefined) {
    assert(
      Number.isFinite(c.writeRatePerSecondMax) && c.writeRatePerSecondMax > 0,
      `writeRatePerSecondMax must be a positive number, got ${c.writeRatePerSecondMax}`,
    );
  }
  if (c.writeBurstMax !== undefined) positiveInt(c.writeBurstMax, 'writeBurstMax');
  assert(SLOT_BITS % 4 === 0, 'repair descends four bits at a time');
}

/** What a replica knows about one tombstone it holds. */
export interface TombstoneState {
  /** Wall part of the tombstone's version: when the delete happened. */
  readonly wall: number;
  /** Our store sequence number when we stored it. */
  readonly storedSeq: number;
}

/**
 * The tombstone collection rule. A tombstone may be forgotten only when
 *
 * 1. it is at least `tombstoneTtlMs` old (default 24 h), AND
 * 2. every live member other than us has *acknowledged* it: we saw that member's Merkle
 *    root equal to ours at a moment when we already held the tombstone
 *    (`agreedSeq[m] >= storedSeq`). Equal roots mean equal entry sets (up to a 2^-64 hash
 *    collision), so that member holds the tombstone or a newer write of the key, and no
 *    live member can hand the deleted value back.
 *
 * A member that is not live when we collect and later returns holding the old value would
 * bring it back: as in Cassandra's gc_grace_seconds, a node down for longer than the
 * tombstone lifetime must rejoin empty. That is why (1) is a day, not zero.
 */
export function collectTombstone(
  t: TombstoneState,
  now: number,
  tombstoneTtlMs: number,
  livePeers: readonly NodeId[],
  agreedSeq: ReadonlyMap<NodeId, number>,
): boolean {
  if (now - t.wall < tombstoneTtlMs) return false;
  for (const peer of livePeers) {
    const seq = agreedSeq.get(peer);
    if (seq === undefined || seq < t.storedSeq) return false;
  }
  return true;
}
