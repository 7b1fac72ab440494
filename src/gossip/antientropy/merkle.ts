import { assert } from '../../kernel/assert.ts';
import { HASH_SEED_HI, HASH_SEED_LO, type Hash64, hash64, murmur3, utf8 } from './hash.ts';
import { compareHlc, type Hlc } from './hlc.ts';

/**
 * The multi-writer map and its Merkle tree over key-hash ranges.
 *
 * Shape. A key's *slot* is the top `SLOT_BITS` = 20 bits of the hash of its bytes, so a key
 * never moves when it is rewritten. The tree is a binary trie on slot bits: a leaf that
 * grows past `leafKeysMax` (default 128) splits in two on its next bit, a subtree that
 * shrinks to `leafKeysMax / 2` collapses back into a leaf; both are local, O(leafKeysMax)
 * steps, so leaves hold about 64..128 keys and nothing is ever rebuilt. Depth is capped at
 * 20 bits, hence at most 2^20 leaves; leaves at the cap simply grow (beyond ~2^26 keys).
 *
 * Hashes. An entry's hash covers key, version, tombstone flag and value (`entryHash`). A
 * node's hash is the lane-wise sum mod 2^32 of its entries' hashes: order-independent and
 * invertible, so a write subtracts the old entry hash and adds the new one on the one
 * root-to-leaf path of its slot. Because a sum does not depend on how a range is split, the
 * summary of any slot range is the same on two replicas holding the same entries whatever
 * their trees' shapes; the repair protocol therefore talks about ranges (prefix, bits), not
 * about nodes, and each replica answers from its own shape (scanning a leaf when the range is
 * finer than it).
 */

export const SLOT_BITS = 20;
export const LEAVES_MAX = 2 ** SLOT_BITS;

export interface Entry {
  readonly key: string;
  readonly version: Hlc;
  /** The value, or undefined for a tombstone (a delete). */
  readonly value: Uint8Array | undefined;
}

/** A stored entry with what the tree needs about it. */
export interface StoredEntry extends Entry {
  readonly slot: number;
  readonly hash: Hash64;
  /** Local store sequence number when this entry was stored (orders local history). */
  readonly storedSeq: number;
}

/** A slot range: all slots whose top `bits` bits equal `prefix`. */
export interface Range {
  readonly bits: number;
  readonly prefix: number;
}

export const ROOT_RANGE: Range = { bits: 0, prefix: 0 };

export interface Summary {
  readonly hi: number;
  readonly lo: number;
  readonly count: number;
}

export function sameSummary(a: Summary, b: Summary): boolean {
  return a.hi === b.hi && a.lo === b.lo && a.count === b.count;
}

/** The slot of a key: the top 20 bits of the high lane of its hash. */
export function slotOf(key: string, keyBytes: Uint8Array = utf8(key)): number {
  return murmur3(keyBytes, HASH_SEED_HI) >>> (32 - SLOT_BITS);
}

export function inRange(slot: number, range: Range): boolean {
  return range.bits === 0 || slot >>> (SLOT_BITS - range.bits) === range.prefix;
}

// One scratch buffer for entry hashing (pure: contents never outlive a call).
let scratch = new Uint8Array(512);
let scratchView = new DataView(scratch.buffer);

/** The hash of one entry: everything two replicas must agree on about it. */
export function entryHash(entry: Entry, keyBytes: Uint8Array = utf8(entry.key)): Hash64 {
  const n = keyBytes.length + 29;
  if (n > scratch.length) {
    scratch = new Uint8Array(n * 2);
    scratchView = new DataView(scratch.buffer);
  }
  const v = entry.value;
  scratch.set(keyBytes, 0);
  let at = keyBytes.length;
  scratchView.setUint32(at, Math.floor(entry.version.wall / 0x1_0000_0000));
  scratchView.setUint32(at + 4, entry.version.wall >>> 0);
  scratchView.setUint32(at + 8, entry.version.logical);
  scratchView.setUint32(at + 12, entry.version.node);
  at += 16;
  scratch[at] = v === undefined ? 1 : 0;
  scratchView.setUint32(at + 1, v === undefined ? 0 : murmur3(v, HASH_SEED_HI));
  scratchView.setUint32(at + 5, v === undefined ? 0 : murmur3(v, HASH_SEED_LO));
  scratchView.setUint32(at + 9, keyBytes.length);
  return hash64(scratch.subarray(0, n));
}

interface TreeNode {
  hi: number;
  lo: number;
  count: number;
  /** Present on a leaf: the keys whose slots fall in this node's range. */
  keys: Set<string> | undefined;
  zero: TreeNode | undefined;
  one: TreeNode | undefined;
}

function leafNode(): TreeNode {
  return { hi: 0, lo: 0, count: 0, keys: new Set(), zero: undefined, one: undefined };
}

function bitAt(slot: number, depth: number): number {
  return (slot >>> (SLOT_BITS - 1 - depth)) & 1;
}

export interface MerkleTreeConfig {
  /** A leaf splits when it holds more keys than this. Default 128 (leaves of ~64..128). */
  readonly leafKeysMax: number;
}

export const MERKLE_TREE_DEFAULTS: MerkleTreeConfig = { leafKeysMax: 128 };

/**
 * Entries by key plus the tree over their slots. Does no conflict resolution: `set`
 * replaces whatever is stored (the map above decides last writer wins).
 */
export class MerkleTree {
  private readonly entries = new Map<string, StoredEntry>();
  private readonly root: TreeNode = leafNode();
  private leaves = 1;

  constructor(private readonly config: MerkleTreeConfig = MERKLE_TREE_DEFAULTS) {
    assert(
      Number.isInteger(config.leafKeysMax) && config.leafKeysMax >= 2,
      `leafKeysMax must be an integer >= 2, got ${config.leafKeysMax}`,
    );
  }

  get size(): number {
    return this.entries.size;
  }

  get leafCount(): number {
    return this.leaves;
  }

  get(key: string): StoredEntry | undefined {
    return this.entries.get(key);
  }

  values(): IterableIterator<StoredEntry> {
    return this.entries.values();
  }

  rootSummary(): Summary {
    return { hi: this.root.hi >>> 0, lo: this.root.lo >>> 0, count: this.root.count };
  }

  /** Store `entry` (replacing any entry of its key): one root-to-leaf path changes. */
  set(entry: StoredEntry): void {
    const old = this.entries.get(entry.key);
    assert(old === undefined || old.slot === entry.slot, 'a key never changes slot');
    this.entries.set(entry.key, entry);
    const dHi = (entry.hash[0] - (old?.hash[0] ?? 0)) | 0;
    const dLo = (entry.hash[1] - (old?.hash[1] ?? 0)) | 0;
    const dCount = old === undefined ? 1 : 0;
    let node = this.root;
    let depth = 0;
    for (;;) {
      node.hi = (node.hi + dHi) | 0;
      node.lo = (node.lo + dLo) | 0;
      node.count += dCount;
      if (node.keys !== undefined) break;
      node = (bitAt(entry.slot, depth) === 0 ? node.zero : node.one) as TreeNode;
      depth += 1;
    }
    node.keys.add(entry.key);
    if (node.keys.size > this.config.leafKeysMax && depth < SLOT_BITS) this.split(node, depth);
  }

  /** Remove a key entirely (tombstone collection). */
  delete(key: string): boolean {
    const old = this.entries.get(key);
    if (old === undefined) return false;
    this.entries.delete(key);
    const path: TreeNode[] = [];
    let node = this.root;
    let depth = 0;
    for (;;) {
      path.push(node);
      node.hi = (node.hi - old.hash[0]) | 0;
      node.lo = (node.lo - old.hash[1]) | 0;
      node.count -= 1;
      if (node.keys !== undefined) break;
      node = (bitAt(old.slot, depth) === 0 ? node.zero : node.one) as TreeNode;
      depth += 1;
    }
    assert(node.keys.delete(key), 'a stored key is in its leaf');
    // Collapse the highest ancestor that became small enough: one local merge.
    for (const ancestor of path) {
      if (ancestor.keys === undefined && ancestor.count <= this.config.leafKeysMax / 2) {
        this.collapse(ancestor);
        break;
      }
    }
    return true;
  }

  private split(leaf: TreeNode, depth: number): void {
    let node = leaf;
    let d = depth;
    // A split whose keys all share the next bit splits again, down to the depth cap.
    while (node.keys !== undefined && node.keys.size > this.config.leafKeysMax && d < SLOT_BITS) {
      const zero = leafNode();
      const one = leafNode();
      for (const key of node.keys) {
        const e = this.entries.get(key) as StoredEntry;
        const child = bitAt(e.slot, d) === 0 ? zero : one;
        child.keys?.add(key);
        child.hi = (child.hi + e.hash[0]) | 0;
        child.lo = (child.lo + e.hash[1]) | 0;
        child.count += 1;
      }
      node.keys = undefined;
      node.zero = zero;
      node.one = one;
      this.leaves += 1;
      node = zero.count > one.count ? zero : one;
      d += 1;
    }
    assert(this.leaves <= LEAVES_MAX, `at most ${LEAVES_MAX} leaves`);
  }

  private collapse(node: TreeNode): void {
    const keys = new Set<string>();
    let leaves = 0;
    const stack: TreeNode[] = [node];
    while (stack.length > 0) {
      const n = stack.pop() as TreeNode;
      if (n.keys !== undefined) {
        leaves += 1;
        for (const k of n.keys) keys.add(k);
      } else {
        stack.push(n.zero as TreeNode, n.one as TreeNode);
      }
    }
    assert(keys.size === node.count, 'a collapsed subtree keeps its count');
    node.keys = keys;
    node.zero = undefined;
    node.one = undefined;
    this.leaves -= leaves - 1;
  }

  /** The summary of a slot range, from whatever shape this tree has there. */
  summary(range: Range): Summary {
    const node = this.descend(range);
    if (node === undefined) return { hi: 0, lo: 0, count: 0 };
    if (node.depth === range.bits) {
      return { hi: node.node.hi >>> 0, lo: node.node.lo >>> 0, count: node.node.count };
    }
    let hi = 0;
    let lo = 0;
    let count = 0;
    for (const e of this.scan(node.node, range)) {
      hi = (hi + e.hash[0]) | 0;
      lo = (lo + e.hash[1]) | 0;
      count += 1;
    }
    return { hi: hi >>> 0, lo: lo >>> 0, count };
  }

  /** The entries whose slots fall in `range`. */
  entriesIn(range: Range): StoredEntry[] {
    const found = this.descend(range);
    if (found === undefined) return [];
    return [...this.scan(found.node, range)];
  }

  private *scan(node: TreeNode, range: Range): Generator<StoredEntry> {
    const stack: TreeNode[] = [node];
    while (stack.length > 0) {
      const n = stack.pop() as TreeNode;
      if (n.keys === undefined) {
        stack.push(n.zero as TreeNode, n.one as TreeNode);
        continue;
      }
      for (const key of n.keys) {
        const e = this.entries.get(key) as StoredEntry;
        if (inRange(e.slot, range)) yield e;
      }
    }
  }

  /** The node at `range`, or the leaf covering it, with its depth. */
  private descend(range: Range): { node: TreeNode; depth: number } | undefined {
    assert(
      Number.isInteger(range.bits) && range.bits >= 0 && range.bits <= SLOT_BITS,
      'range bits in 0..20',
    );
    let node = this.root;
    let depth = 0;
    while (depth < range.bits && node.keys === undefined) {
      const bit = (range.prefix >>> (range.bits - 1 - depth)) & 1;
      node = (bit === 0 ? node.zero : node.one) as TreeNode;
      depth += 1;
    }
    return { node, depth };
  }

  /** The cheap invariants, checked at the end of every input. */
  checkCheap(): void {
    assert(this.root.count === this.entries.size, 'root count is the number of entries');
    assert(this.leaves >= 1 && this.leaves <= LEAVES_MAX, `1..${LEAVES_MAX} leaves`);
  }

  /** Every invariant, O(n): sums, counts, slot placement, leaf sizes (for tests). */
  checkFull(): void {
    this.checkCheap();
    let leaves = 0;
    let seen = 0;
    const visit = (n: TreeNode, range: Range): void => {
      let hi = 0;
      let lo = 0;
      let count = 0;
      if (n.keys !== undefined) {
        leaves += 1;
        assert(
          n.keys.size <= this.config.leafKeysMax || range.bits === SLOT_BITS,
          'leaves hold at most leafKeysMax keys above the depth cap',
        );
        for (const key of n.keys) {
          const e = this.entries.get(key);
          assert(e !== undefined && inRange(e.slot, range), `key ${key} sits in its slot's leaf`);
          hi = (hi + e.hash[0]) | 0;
          lo = (lo + e.hash[1]) | 0;
          count += 1;
        }
        seen += count;
      } else {
        assert(n.zero !== undefined && n.one !== undefined, 'internal nodes have two children');
        const z = { bits: range.bits + 1, prefix: range.prefix * 2 };
        const o = { bits: range.bits + 1, prefix: range.prefix * 2 + 1 };
        visit(n.zero, z);
        visit(n.one, o);
        hi = (n.zero.hi + n.one.hi) | 0;
        lo = (n.zero.lo + n.one.lo) | 0;
        count = n.zero.count + n.one.count;
      }
      assert(n.hi === hi && n.lo === lo && n.count === count, 'a node sums its subtree');
    };
    visit(this.root, ROOT_RANGE);
    assert(leaves === this.leaves, 'leaf count tracked');
    assert(seen === this.entries.size, 'every entry in exactly one leaf');
  }
}

/** Whether `a` should replace `b` under last writer wins (newer HLC, then node id, wins). */
export function newerThan(a: Hlc, b: Hlc | undefined): boolean {
  return b === undefined || compareHlc(a, b) > 0;
}
