import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { Rumour, UserEvent } from './types.ts';
import { rumourBytes } from './wire.ts';

interface Queued {
  readonly key: string;
  readonly rumour: Rumour;
  readonly bytes: number;
  transmits: number;
  /** Event rumours: sends that told the receiver nothing new. */
  useless: number;
}

/** The smallest rumour (suspect, dead, leave: 13 bytes; alive with no tags: 11). */
const RUMOUR_BYTES_MIN = 11;

/**
 * Rumours waiting to be piggybacked, fewest transmissions first (memberlist's
 * TransmitLimitedQueue). Membership rumours are keyed by member, so a newer rumour about a
 * member replaces an older one; event rumours by origin and sequence. Kept in buckets by
 * transmission count, so filling a packet touches only what it takes, not the whole queue
 * (a joining cluster queues one rumour per member).
 */
export class RumourQueue {
  private readonly items = new Map<string, Queued>();
  /** buckets[t]: the queued rumours sent t times, oldest first. */
  private readonly buckets: Set<Queued>[] = [];

  constructor(private readonly sizeMax: number) {}

  get size(): number {
    return this.items.size;
  }

  /** Queues `rumour` with no transmissions yet, replacing what was queued under its key. */
  put(rumour: Rumour): void {
    const key = rumourKey(rumour);
    const old = this.items.get(key);
    if (old !== undefined) this.remove(old);
    else if (this.items.size >= this.sizeMax) this.dropMostSent();
    const q: Queued = { key, rumour, bytes: rumourBytes(rumour), transmits: 0, useless: 0 };
    this.items.set(key, q);
    this.bucket(0).add(q);
  }

  /**
   * Takes rumours fitting `budget` bytes, fewest transmissions first, and counts one
   * transmission each; those that reach `limit` leave the queue. Returns the bytes left.
   */
  take(budget: number, limit: number, into: Rumour[]): number {
    let left = budget;
    const taken: Queued[] = [];
    for (const bucket of this.buckets) {
      if (bucket === undefined || bucket.size === 0) continue;
      for (const q of bucket) {
        if (left < RUMOUR_BYTES_MIN || into.length >= 255) break;
        if (q.bytes > left) continue;
        into.push(q.rumour);
        left -= q.bytes;
        taken.push(q);
      }
      if (left < RUMOUR_BYTES_MIN || into.length >= 255) break;
    }
    for (const q of taken) {
      this.buckets[q.transmits]!.delete(q);
      q.transmits++;
      if (q.transmits >= limit) this.items.delete(q.key);
      else this.bucket(q.transmits).add(q);
    }
    return left;
  }

  /** Event feedback: a receiver already had it. Removes it after `uselessMax` such sends. */
  useless(origin: NodeId, seq: number, uselessMax: number): void {
    const q = this.items.get(`e${origin}:${seq}`);
    if (q === undefined) return;
    q.useless++;
    if (q.useless >= uselessMax) this.remove(q);
  }

  /** The most transmissions any queued rumour has had. */
  maxTransmits(): number {
    for (let t = this.buckets.length - 1; t >= 0; t--) {
      if ((this.buckets[t]?.size ?? 0) > 0) return t;
    }
    return 0;
  }

  private bucket(t: number): Set<Queued> {
    while (this.buckets.length <= t) this.buckets.push(new Set());
    return this.buckets[t]!;
  }

  private remove(q: Queued): void {
    this.items.delete(q.key);
    this.buckets[q.transmits]?.delete(q);
  }

  private dropMostSent(): void {
    const t = this.maxTransmits();
    const worst = this.buckets[t]?.values().next();
    assert(worst !== undefined && worst.done !== true, 'dropMostSent on an empty queue');
    this.remove(worst.value);
  }
}

export function rumourKey(r: Rumour): string {
  return r.kind === 'event' ? eventKey(r.event) : `m${r.id}`;
}

function eventKey(e: UserEvent): string {
  return `e${e.origin}:${e.seq}`;
}
