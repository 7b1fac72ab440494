import type { GossipDeliver } from '../gossip/index.ts';
import { assert } from '../kernel/assert.ts';

/**
 * What the agent received, numbered 1, 2, 3... in the order the core delivered it (user
 * events, and the core's own `gap` when an origin's events were lost to retention), kept
 * for readers of the HTTP API. The last `keptMax` are kept; a reader asking from before
 * them gets a `feed-gap {from, to}` first, never silence.
 */
export type FeedItem =
  | {
      readonly n: number;
      readonly type: 'event';
      readonly origin: number;
      readonly seq: number;
      readonly name: string;
      readonly payload: string;
    }
  | {
      readonly n: number;
      readonly type: 'gap';
      readonly origin: number;
      readonly from: number;
      readonly to: number;
    }
  /** Feed numbers from..to are no longer kept here. */
  | { readonly n: number; readonly type: 'feed-gap'; readonly from: number; readonly to: number };

export type FeedListener = () => void;

export class DeliveryFeed {
  private readonly items: FeedItem[] = [];
  private head = 0;
  private nextN = 1;
  private readonly listeners = new Set<FeedListener>();

  constructor(
    private readonly keptMax: number,
    private readonly listenersMax: number,
  ) {
    assert(Number.isSafeInteger(keptMax) && keptMax >= 1, 'feed keptMax must be >= 1');
    assert(Number.isSafeInteger(listenersMax) && listenersMax >= 1, 'listenersMax must be >= 1');
  }

  /** The number the next item will get. */
  get next(): number {
    return this.nextN;
  }

  get listening(): number {
    return this.listeners.size;
  }

  append(d: GossipDeliver): void {
    const n = this.nextN++;
    const item: FeedItem =
      d.type === 'event'
        ? {
            n,
            type: 'event',
            origin: d.event.origin,
            seq: d.event.seq,
            name: d.event.name,
            payload: d.event.payload,
          }
        : { n, type: 'gap', origin: d.origin, from: d.from, to: d.to };
    this.items.push(item);
    if (this.items.length - this.head > this.keptMax) this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    for (const l of [...this.listeners]) l();
  }

  /** Items numbered `from` on, at most `countMax`; a `feed-gap` first if some are gone. */
  since(from: number, countMax: number): FeedItem[] {
    const out: FeedItem[] = [];
    const oldest = this.items[this.head]?.n ?? this.nextN;
    let start = Math.max(1, from);
    if (start < oldest) {
      out.push({ n: oldest - 1, type: 'feed-gap', from: start, to: oldest - 1 });
      start = oldest;
    }
    for (
      let i = this.head + (start - oldest);
      i < this.items.length && out.length < countMax;
      i++
    ) {
      out.push(this.items[i]!);
    }
    return out;
  }

  /** Calls `l` after every append until the returned function is called; undefined when full. */
  listen(l: FeedListener): (() => void) | undefined {
    if (this.listeners.size >= this.listenersMax) return undefined;
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
