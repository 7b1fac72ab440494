import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { EventHead, GossipDeliver, RetainedHead, UserEvent } from './types.ts';

interface OriginState {
  /** The next sequence to deliver from this origin. */
  next: number;
  /** Retained events by sequence: delivered ones (served to peers) and early ones (waiting). */
  readonly retained: Map<number, UserEvent>;
  /** The highest sequence retention dropped (0: none): peers behind it get a gap. */
  evictedUpTo: number;
  /** Since when an event after a missing one has waited (undefined: no hole). */
  holeSince: number | undefined;
  /** The highest head a peer reported: events up to it exist somewhere, or existed. */
  knownHead: number;
}

interface Retained {
  readonly origin: NodeId;
  readonly seq: number;
  readonly at: number;
}

/** How a received event changed the log. */
export type EventIntake = 'new' | 'known' | 'full';

/**
 * User events per origin, delivered in order. Keeps the last `retainedMax` events (all
 * origins together) or those younger than `retentionMs`, whichever is fewer, to serve peers
 * that are behind. A reader behind what any peer retains gets an explicit gap.
 */
export class EventLog {
  private readonly origins = new Map<NodeId, OriginState>();
  /** Origins in the order we started following them, for the rotating digest slice. */
  private readonly originList: NodeId[] = [];
  /** Retained events in arrival order, for eviction. */
  private readonly fifo: Retained[] = [];
  private fifoHead = 0;
  /** Origins with a hole, checked for expiry on `evict`. */
  private readonly holes = new Set<NodeId>();

  constructor(
    private readonly retainedMax: number,
    private readonly retentionMs: number,
    private readonly originsMax: number,
    /** A hole older than this (events after it waiting) is given up as a gap: whoever had it crashed. */
    private readonly holeTimeoutMs: number,
    private readonly deliver: (d: GossipDeliver) => void,
    /** Called whenever an origin's head changes (for the digest hash). */
    private readonly onHead: (origin: NodeId, before: number, after: number) => void,
  ) {}

  get retainedCount(): number {
    return this.fifo.length - this.fifoHead;
  }

  /** The highest sequence delivered in order from `origin` (0 if none or unknown). */
  head(origin: NodeId): number {
    const o = this.origins.get(origin);
    return o === undefined ? 0 : o.next - 1;
  }

  knows(origin: NodeId): boolean {
    return this.origins.has(origin);
  }

  /** Starts following `origin` after `seq` (a joiner does not replay history). */
  follow(origin: NodeId, after: number): void {
    if (this.origins.has(origin) || this.origins.size >= this.originsMax) return;
    this.origins.set(origin, {
      next: after + 1,
      retained: new Map(),
      evictedUpTo: 0,
      holeSince: undefined,
      knownHead: after,
    });
    this.originList.push(origin);
    this.onHead(origin, -1, after);
  }

  /** An event arrived (rumour, sync or our own publish). */
  receive(e: UserEvent, now: number): EventIntake {
    let o = this.origins.get(e.origin);
    if (o === undefined) {
      // First word of this origin: follow it from here (we were not there for what came before).
      if (this.origins.size >= this.originsMax) return 'full';
      this.follow(e.origin, e.seq - 1);
      o = this.origins.get(e.origin)!;
    }
    if (e.seq < o.next || o.retained.has(e.seq)) return 'known';
    o.retained.set(e.seq, e);
    this.fifo.push({ origin: e.origin, seq: e.seq, at: now });
    this.drain(e.origin, o);
    if (e.seq > o.next) {
      o.holeSince ??= now;
      this.holes.add(e.origin);
    } else if (this.holes.has(e.origin)) {
      this.recheckHole(e.origin, o, o.holeSince ?? now);
    }
    this.evict(now);
    return 'new';
  }

  /** A peer retains only from `h.oldest`: what we still miss before it is lost, say so. */
  gapBefore(h: RetainedHead): void {
    const o = this.origins.get(h.origin);
    if (o === undefined || h.oldest === 0 || o.next >= h.oldest || h.seq < o.next) return;
    const before = o.next - 1;
    while (o.next < h.oldest) {
      if (o.retained.has(o.next)) {
        this.deliverReady(o);
        continue;
      }
      let to = o.next;
      while (to + 1 < h.oldest && !o.retained.has(to + 1)) to++;
      this.deliver({ type: 'gap', origin: h.origin, from: o.next, to });
      o.next = to + 1;
      this.deliverReady(o);
    }
    if (o.next - 1 !== before) this.onHead(h.origin, before, o.next - 1);
  }

  private drain(origin: NodeId, o: OriginState): void {
    const before = o.next - 1;
    this.deliverReady(o);
    if (o.next - 1 !== before) this.onHead(origin, before, o.next - 1);
  }

  /** Delivers what is contiguous from `next`; the caller reports the head change. */
  private deliverReady(o: OriginState): void {
    for (;;) {
      const e = o.retained.get(o.next);
      if (e === undefined) return;
      this.deliver({ type: 'event', event: e });
      o.next++;
    }
  }

  /**
   * A peer delivered `origin` up to `seq`: if we are behind, the missing events start a hole
   * that repair must fill before the hole timeout, or it becomes a gap.
   */
  noteHead(origin: NodeId, seq: number, now: number): void {
    // An origin we never heard of: everything it published is missing.
    if (!this.origins.has(origin) && seq > 0) this.follow(origin, 0);
    const o = this.origins.get(origin);
    if (o === undefined || seq < o.next) return;
    o.knownHead = Math.max(o.knownHead, seq);
    o.holeSince ??= now;
    this.holes.add(origin);
  }

  /** Fills holes older than the hole timeout with gaps, up to the next event we hold. */
  private expireHoles(now: number): void {
    for (const origin of this.holes) {
      const o = this.origins.get(origin)!;
      if (o.holeSince === undefined || now - o.holeSince < this.holeTimeoutMs) continue;
      let first = o.knownHead >= o.next ? o.knownHead + 1 : Number.POSITIVE_INFINITY;
      for (const seq of o.retained.keys()) if (seq >= o.next && seq < first) first = seq;
      const before = o.next - 1;
      if (first !== Number.POSITIVE_INFINITY) {
        this.deliver({ type: 'gap', origin, from: o.next, to: first - 1 });
        o.next = first;
        this.deliverReady(o);
        this.onHead(origin, before, o.next - 1);
      }
      this.recheckHole(origin, o, now);
    }
  }

  /** After `next` moved: the hole is gone, or (events still waiting) dates from `since`. */
  private recheckHole(origin: NodeId, o: OriginState, since: number): void {
    let waiting = o.knownHead >= o.next;
    for (const seq of o.retained.keys()) if (seq > o.next) waiting = true;
    if (waiting) {
      o.holeSince = since;
      return;
    }
    o.holeSince = undefined;
    this.holes.delete(origin);
  }

  /** Drops the oldest retained events beyond the count or age limit; expires holes. */
  evict(now: number): void {
    if (this.holes.size > 0) this.expireHoles(now);
    while (this.retainedCount > 0) {
      const r = this.fifo[this.fifoHead]!;
      if (this.retainedCount <= this.retainedMax && now - r.at < this.retentionMs) break;
      this.fifoHead++;
      const o = this.origins.get(r.origin);
      if (o === undefined) continue;
      if (o.retained.delete(r.seq)) o.evictedUpTo = Math.max(o.evictedUpTo, r.seq);
    }
    if (this.fifoHead > 1024 && this.fifoHead * 2 > this.fifo.length) {
      this.fifo.splice(0, this.fifoHead);
      this.fifoHead = 0;
    }
    assert(this.retainedCount <= this.retainedMax, 'event retention exceeded its bound');
  }

  /** Heads with the oldest retained sequence, for a push-pull. */
  retainedHeads(): RetainedHead[] {
    const out: RetainedHead[] = [];
    for (const [origin, o] of this.origins) {
      out.push({ origin, seq: o.next - 1, oldest: o.evictedUpTo === 0 ? 0 : o.evictedUpTo + 1 });
    }
    return out;
  }

  /** Up to `max` heads starting at the `cursor`-th origin (rotating digest slice). */
  headSlice(cursor: number, max: number): EventHead[] {
    const all = this.originList;
    const n = all.length;
    if (n === 0 || max === 0) return [];
    const out: EventHead[] = [];
    for (let i = 0; i < Math.min(max, n); i++) {
      const origin = all[(cursor + i) % n]!;
      out.push({ origin, seq: this.head(origin) });
    }
    return out;
  }

  /**
   * Retained events a peer with `heads` lacks, up to `max`. Origins the peer does not
   * follow are sent from the oldest we retain unless `joining` (a joiner starts from now).
   */
  missing(heads: readonly RetainedHead[], joining: boolean, max: number): UserEvent[] {
    const theirs = new Map<NodeId, number>();
    for (const h of heads) theirs.set(h.origin, h.seq);
    const out: UserEvent[] = [];
    for (const [origin, o] of this.origins) {
      const after = theirs.get(origin);
      if (after === undefined && joining) continue;
      const seqs = [...o.retained.keys()].filter((s) => s > (after ?? 0) && s < o.next);
      seqs.sort((a, b) => a - b);
      for (const s of seqs) {
        if (out.length >= max) return out;
        out.push(o.retained.get(s)!);
      }
    }
    return out;
  }
}
