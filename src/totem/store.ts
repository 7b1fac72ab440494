import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { Item, Mcast, Origin, RingId } from './types.ts';

/**
 * The datagrams one node holds of one ring: what it received (`aru` = all received up to,
 * `highSeq` = highest seen), what it delivered, and what it freed. Seqs start at 1.
 */
export class RingStore {
  private readonly held = new Map<number, Mcast>();
  /** All of 1..aru received (held, delivered or freed). */
  aru = 0;
  highSeq = 0;
  /** Delivered (or skipped) up to. */
  delivered = 0;
  /** Freed up to: every member holds these, and we delivered them. */
  freed = 0;

  constructor(readonly ring: RingId) {}

  has(seq: number): boolean {
    return seq <= this.freed || this.held.has(seq);
  }

  get(seq: number): Mcast | undefined {
    return this.held.get(seq);
  }

  get size(): number {
    return this.held.size;
  }

  /** Stores a datagram; false if it was already held or freed. */
  add(m: Mcast): boolean {
    assert(m.seq >= 1, 'datagram seqs start at 1');
    if (this.has(m.seq)) return false;
    this.held.set(m.seq, m);
    if (m.seq > this.highSeq) this.highSeq = m.seq;
    while (this.held.has(this.aru + 1)) this.aru++;
    return true;
  }

  /** Seqs above the aru up to `upTo` that we lack, at most `max` of them. */
  missing(upTo: number, max: number, skip: ReadonlySet<number>): number[] {
    const out: number[] = [];
    for (let s = this.aru + 1; s <= upTo && out.length < max; s++) {
      if (!this.held.has(s) && !skip.has(s)) out.push(s);
    }
    return out;
  }

  /** Drops datagrams up to `upTo` (never above what we delivered or hold contiguously). */
  free(upTo: number): boolean {
    if (upTo <= this.freed) return false;
    assert(upTo <= this.aru, `free ${upTo} above aru ${this.aru}`);
    for (let s = this.freed + 1; s <= upTo; s++) this.held.delete(s);
    this.freed = upTo;
    return true;
  }

  /** Held datagrams with seq in (from, to], ascending. */
  heldBetween(from: number, to: number): Mcast[] {
    const out: Mcast[] = [];
    for (let s = Math.max(from, this.freed) + 1; s <= to; s++) {
      const m = this.held.get(s);
      if (m !== undefined) out.push(m);
    }
    return out;
  }
}

/** A message whose fragments are being delivered, per originating node. */
interface Partial {
  readonly origin: Origin;
  readonly chunks: Uint8Array[];
}

/**
 * Reassembles fragmented messages in delivery order. A sender's fragments are consecutive in
 * its own sending order, so one message per origin node can be in progress; one that breaks
 * off (a gap skipped in a transitional configuration, a configuration change) is dropped.
 */
export class Reassembler {
  private readonly partial = new Map<NodeId, Partial>();

  /** The whole message this item completes, or undefined. */
  add(item: Item): Uint8Array | undefined {
    if (item.parts === 1) {
      this.partial.delete(item.origin.node);
      return item.data;
    }
    const node = item.origin.node;
    let p = this.partial.get(node);
    if (item.part === 0) {
      p = { origin: item.origin, chunks: [] };
      this.partial.set(node, p);
    } else if (
      p === undefined ||
      p.origin.boot !== item.origin.boot ||
      p.origin.n !== item.origin.n ||
      p.chunks.length !== item.part
    ) {
      this.partial.delete(node);
      return undefined;
    }
    p.chunks.push(item.data);
    if (p.chunks.length < item.parts) return undefined;
    this.partial.delete(node);
    return concat(p.chunks);
  }

  clear(): void {
    this.partial.clear();
  }

  get inProgress(): number {
    return this.partial.size;
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
