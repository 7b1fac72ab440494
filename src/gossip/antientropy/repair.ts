import { assert } from '../../kernel/assert.ts';
import { isHlc } from './hlc.ts';
import type { Entry, MerkleTree, Range } from './merkle.ts';
import { newerThan, SLOT_BITS } from './merkle.ts';
import {
  type KeyList,
  type KeyVersion,
  keyListBytes,
  keyVersionBytes,
  type RangeSummary,
} from './wire.ts';

/** Why an input was dropped (and counted): never thrown, never stored. */
export type DropReason = 'malformed' | 'too-large' | 'future' | 'unknown-peer' | 'full';

export const DROP_REASONS = ['malformed', 'too-large', 'future', 'unknown-peer', 'full'] as const;
type Exhaustive<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _dropExhaustive: Exhaustive<(typeof DROP_REASONS)[number], DropReason> = true;
void _dropExhaustive;

function isUint32(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff;
}

/** A range the protocol can name: 0, 4, ..., 20 bits and a prefix that fits them. */
export function isRange(r: unknown): r is Range {
  if (typeof r !== 'object' || r === null) return false;
  const { bits, prefix } = r as Record<string, unknown>;
  return (
    Number.isInteger(bits) &&
    (bits as number) >= 0 &&
    (bits as number) <= SLOT_BITS &&
    (bits as number) % 4 === 0 &&
    Number.isInteger(prefix) &&
    (prefix as number) >= 0 &&
    (prefix as number) < 2 ** (bits as number)
  );
}

export function isRangeSummary(r: unknown): r is RangeSummary {
  if (!isRange(r)) return false;
  const { hi, lo, count } = r as unknown as Record<string, unknown>;
  return isUint32(hi) && isUint32(lo) && Number.isSafeInteger(count) && (count as number) >= 0;
}

/** Split items into consecutive chunks of at most `budget` bytes each (none empty). */
export function chunkByBytes<T>(
  items: readonly T[],
  bytes: (item: T) => number,
  budget: number,
): T[][] {
  const chunks: T[][] = [];
  let cur: T[] = [];
  let used = 0;
  for (const item of items) {
    const b = bytes(item);
    assert(b <= budget, `one item (${b} bytes) fits a message (${budget})`);
    if (used + b > budget && cur.length > 0) {
      chunks.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(item);
    used += b;
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}

/**
 * The (key, version) lists of `ranges`, sorted by key; a list too long for one message is
 * cut into pieces, each covering the key interval (after, through] completely, so the
 * receiver can tell "you lack this key" from "this key is in another piece".
 */
export function buildKeyLists(
  tree: MerkleTree,
  ranges: readonly Range[],
  budget: number,
): { list: KeyList; bytes: number }[] {
  const out: { list: KeyList; bytes: number }[] = [];
  // Room for the piece's own bounds (two keys at most) inside the budget.
  const pieceBudget = budget - 2 * (2 + 256 + 16) - 32;
  for (const range of ranges) {
    const keys: KeyVersion[] = tree
      .entriesIn(range)
      .map((e) => ({ key: e.key, version: e.version }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let after: string | undefined;
    let piece: KeyVersion[] = [];
    let used = 0;
    const flush = (through: string | undefined) => {
      const list: KeyList = { range, after, through, keys: piece };
      out.push({ list, bytes: keyListBytes(list) });
      after = through;
      piece = [];
      used = 0;
    };
    for (const kv of keys) {
      const b = keyVersionBytes(kv);
      if (used + b > pieceBudget && piece.length > 0) flush(piece[piece.length - 1]?.key);
      piece.push(kv);
      used += b;
    }
    flush(undefined);
  }
  return out;
}

/**
 * Compare a peer's key list with ours over the same range and interval: `push` our entries
 * the peer lacks or holds older; `want` the keys the peer holds newer or we lack.
 * Undefined if the list is malformed.
 */
export function compareKeyList(
  tree: MerkleTree,
  list: KeyList,
): { push: Entry[]; want: string[] } | undefined {
  const theirs = new Map<string, KeyVersion>();
  for (const kv of list.keys) {
    if (typeof kv !== 'object' || kv === null || typeof kv.key !== 'string' || !isHlc(kv.version)) {
      return undefined;
    }
    theirs.set(kv.key, kv);
  }
  const within = (key: string) =>
    (list.after === undefined || key > list.after) &&
    (list.through === undefined || key <= list.through);
  const push: Entry[] = [];
  const want: string[] = [];
  const mine = new Set<string>();
  for (const e of tree.entriesIn(list.range)) {
    if (!within(e.key)) continue;
    mine.add(e.key);
    const t = theirs.get(e.key);
    if (newerThan(e.version, t?.version))
      push.push({ key: e.key, version: e.version, value: e.value });
    else if (t !== undefined && newerThan(t.version, e.version)) want.push(e.key);
  }
  for (const key of theirs.keys()) if (!mine.has(key) && within(key)) want.push(key);
  return { push, want };
}
