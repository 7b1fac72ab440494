import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { Rumour, UserEvent } from './types.ts';
import { rumourBytes } from './wire.ts';

interface Queued {
  readonly rumour: Rumour;
  readonly bytes: number;
  transmits: number;
  /** Event rumours: sends that told the receiver nothing new. */
  useless: number;
}

/**
 * Rumours waiting to be piggybacked, fewest transmissions first (memberlist's
 * TransmitLimitedQueue). Membership rumours are keyed by member, so a newer rumour about a
 * member replaces an older one; event rumours by origin and sequence.
 */
export class RumourQueue {
  private readonly items = new Map<string, Queued>();

  constructor(private readonly sizeMax: number) {}

  get size(): number {
    return this.items.size;
  }

  /** Queues `rumour` with no transmissions yet, replacing what was queued under its key. */
  put(rumour: Rumour): void {
    const key = rumourKey(rumour);
    if (!this.items.has(key) && this.items.size >= this.sizeMax) this.dropMostSent();
    this.items.delete(key);
    this.items.set(key, { rumour, bytes: rumourBytes(rumour), transmits: 0, useless: 0 });
  }

  /**
   * Takes rumours fitting `budget` bytes, fewest transmissions first, and counts one
   * transmission each; those that reach `limit` leave the queue.
   */
  take(budget: number, limit: number, into: Rumour[]): number {
    if (this.items.size === 0) return budget;
    const order = [...this.items.entries()];
    order.sort((a, b) => a[1].transmits - b[1].transmits);
    let left = budget;
    for (const [key, q] of order) {
      if (into.length >= 255) break;
      if (q.bytes > left) continue;
      into.push(q.rumour);
      left -= q.bytes;
      q.transmits++;
      if (q.transmits >= limit) this.items.delete(key);
    }
    return left;
  }

  /** Event feedback: a receiver already had it. Removes it after `uselessMax` such sends. */
  useless(origin: NodeId, seq: number, uselessMax: number): void {
    const key = `e${origin}:${seq}`;
    const q = this.items.get(key);
    if (q === undefined) return;
    q.useless++;
    if (q.useless >= uselessMax) this.items.delete(key);
  }

  /** The most transmissions any queued rumour has had. */
  maxTransmits(): number {
    let max = 0;
    for (const q of this.items.values()) if (q.transmits > max) max = q.transmits;
    return max;
  }

  private dropMostSent(): void {
    let worst: string | undefined;
    let most = -1;
    for (const [k, q] of this.items) {
      if (q.transmits > most) {
        most = q.transmits;
        worst = k;
      }
    }
    assert(worst !== undefined, 'dropMostSent on an empty queue');
    this.items.delete(worst);
  }
}

export function rumourKey(r: Rumour): string {
  return r.kind === 'event' ? eventKey(r.event) : `m${r.id}`;
}

function eventKey(e: UserEvent): string {
  return `e${e.origin}:${e.seq}`;
}
