import type { Hlc } from './hlc.ts';
import type { Entry, Range, Summary } from './merkle.ts';

/**
 * The repair protocol's messages. Every message is self-contained (it carries the sender's
 * own summaries or lists), so a lost, duplicated or reordered one costs at most a round:
 * the next repair starts again from the roots. `session` only ties messages to a repair for
 * accounting and observers.
 *
 * 1. `hashes`: the sender's summaries of some ranges (the root to start). The receiver
 *    compares each with its own: equal ranges stop; a differing root that is equal is
 *    answered `in-sync`; a differing range that is small (`listKeysMax` on both sides, or
 *    at the 20-bit cap) is answered with its key list (`keys`); a larger one with the
 *    receiver's summaries of its 16 children (`hashes` again, four bits further down).
 * 2. `keys`: the sender's (key, version) lists for ranges, each piece covering a key
 *    interval completely. The receiver answers `values`: its entries the sender lacks or
 *    holds older, and `want`, the keys the sender holds newer.
 * 3. `values`: entries (with values or as tombstones) and keys wanted back; the receiver
 *    stores what wins and answers the wants with one more `values` (with no wants).
 */
export type MerkleMsg = HashesMsg | InSyncMsg | KeysMsg | ValuesMsg;

export interface RangeSummary extends Range, Summary {}

export interface HashesMsg {
  readonly type: 'hashes';
  readonly session: number;
  readonly ranges: readonly RangeSummary[];
}

export interface InSyncMsg {
  readonly type: 'in-sync';
  readonly session: number;
  readonly root: Summary;
}

export interface KeyVersion {
  readonly key: string;
  readonly version: Hlc;
}

/** The keys of `range` in the interval (after, through], sorted; undefined = unbounded. */
export interface KeyList {
  readonly range: Range;
  readonly after: string | undefined;
  readonly through: string | undefined;
  readonly keys: readonly KeyVersion[];
}

export interface KeysMsg {
  readonly type: 'keys';
  readonly session: number;
  readonly lists: readonly KeyList[];
}

export interface ValuesMsg {
  readonly type: 'values';
  readonly session: number;
  readonly entries: readonly Entry[];
  readonly want: readonly string[];
}

export const MERKLE_MSG_TYPES = ['hashes', 'in-sync', 'keys', 'values'] as const;
type Exhaustive<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _msgTypesExhaustive: Exhaustive<(typeof MERKLE_MSG_TYPES)[number], MerkleMsg['type']> = true;
void _msgTypesExhaustive;

/*
 * Wire size model, in bytes, of a compact binary encoding (the unit of every byte count the
 * bench reports): a type byte and a 4-byte session per message; a range is 1 byte of bits +
 * 3 of prefix; a summary 8 (hash) + 4 (count); a key 2 + its UTF-8 bytes; a version
 * 8 (wall) + 4 (logical) + 4 (node); a value 1 (tombstone flag) + 4 + its bytes; arrays a
 * 4-byte length.
 */
const HEADER_BYTES = 5;
const RANGE_BYTES = 4;
const SUMMARY_BYTES = 12;
const VERSION_BYTES = 16;
const LENGTH_BYTES = 4;

const encoder = new TextEncoder();
export function keyBytes(key: string): number {
  return 2 + encoder.encode(key).length;
}

export function entryBytes(entry: Entry): number {
  return keyBytes(entry.key) + VERSION_BYTES + 1 + LENGTH_BYTES + (entry.value?.length ?? 0);
}

export function keyVersionBytes(kv: KeyVersion): number {
  return keyBytes(kv.key) + VERSION_BYTES;
}

export function rangeSummaryBytes(): number {
  return RANGE_BYTES + SUMMARY_BYTES;
}

export function keyListBytes(list: KeyList): number {
  let bytes = RANGE_BYTES + 2 + LENGTH_BYTES;
  if (list.after !== undefined) bytes += keyBytes(list.after);
  if (list.through !== undefined) bytes += keyBytes(list.through);
  for (const kv of list.keys) bytes += keyVersionBytes(kv);
  return bytes;
}

export function messageBytes(msg: MerkleMsg): number {
  switch (msg.type) {
    case 'hashes':
      return HEADER_BYTES + LENGTH_BYTES + msg.ranges.length * rangeSummaryBytes();
    case 'in-sync':
      return HEADER_BYTES + SUMMARY_BYTES;
    case 'keys': {
      let bytes = HEADER_BYTES + LENGTH_BYTES;
      for (const l of msg.lists) bytes += keyListBytes(l);
      return bytes;
    }
    case 'values': {
      let bytes = HEADER_BYTES + 2 * LENGTH_BYTES;
      for (const e of msg.entries) bytes += entryBytes(e);
      for (const k of msg.want) bytes += keyBytes(k);
      return bytes;
    }
  }
}
