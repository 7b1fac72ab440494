import { assert } from '../kernel/assert.ts';
import { DATAGRAM_HEADER_BYTES, ITEM_HEADER_BYTES } from './config.ts';
import type { DeliveryMode, Item, Origin } from './types.ts';

/**
 * Flow control and the send queue: how many datagrams a token visit may send, and how
 * queued messages become datagrams (small ones packed up to the mtu, large ones cut into
 * fragments of one datagram each).
 */

/**
 * Datagrams this visit may send, corosync's `fcc_calculate`:
 * min(max per visit, window − what the others sent last rotation, window × my backlog /
 * total backlog). The backlog share applies only when it is at least 1, so a member with a
 * small queue beside a large one still sends.
 */
export function allowance(
  windowSize: number,
  maxPerVisit: number,
  fccOthers: number,
  myBacklog: number,
  totalBacklog: number,
): number {
  assert(windowSize >= 1 && maxPerVisit >= 1, 'window and max per visit are positive');
  assert(fccOthers >= 0 && myBacklog >= 0 && totalBacklog >= myBacklog, 'counts are consistent');
  let n = Math.min(maxPerVisit, Math.max(0, windowSize - fccOthers));
  if (totalBacklog > 0) {
    const share = Math.floor((windowSize * myBacklog) / totalBacklog);
    if (share > 0 && share < n) n = share;
  }
  return n;
}

/** Bytes an item takes in a datagram. */
export function itemBytes(dataBytes: number): number {
  return ITEM_HEADER_BYTES + dataBytes;
}

/** A published message waiting to be sent, with how many of its fragments have left. */
interface Pending {
  readonly origin: Origin;
  readonly mode: DeliveryMode;
  readonly data: Uint8Array;
  readonly parts: number;
  nextPart: number;
}

/** What one datagram carries. */
export interface Packed {
  readonly mode: DeliveryMode;
  readonly items: Item[];
}

/**
 * The bounded send queue. Depth counts messages (not fragments); bytes count payload.
 * Only the head message can be partly sent.
 */
export class SendQueue {
  private readonly items: Pending[] = [];
  private head = 0;
  private bytesQueued = 0;

  constructor(
    readonly messagesMax: number,
    readonly bytesMax: number,
    /** Payload bytes one fragment carries (mtu minus headers). */
    readonly fragmentBytes: number,
    readonly mtuBytes: number,
  ) {
    assert(messagesMax >= 1 && bytesMax >= 1, 'send queue bounds are positive');
    assert(fragmentBytes >= 1 && mtuBytes > fragmentBytes, 'fragment must fit the mtu');
  }

  get depth(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.bytesQueued;
  }

  /** Whether a message of `dataBytes` fits under both bounds. */
  fits(dataBytes: number): boolean {
    return this.depth < this.messagesMax && this.bytesQueued + dataBytes <= this.bytesMax;
  }

  push(origin: Origin, mode: DeliveryMode, data: Uint8Array): void {
    assert(this.fits(data.length), 'push only what fits');
    const parts = Math.max(1, Math.ceil(data.length / this.fragmentBytes));
    this.items.push({ origin, mode, data, parts, nextPart: 0 });
    this.bytesQueued += data.length;
  }

  /**
   * Fragments of a head message sent in a ring that ended may not all have reached anyone:
   * in a new configuration it starts again from its first fragment (receivers drop partial
   * messages at a configuration change).
   */
  restartHead(): void {
    const p = this.items[this.head];
    if (p !== undefined) p.nextPart = 0;
  }

  /** Takes the next datagram's worth: one fragment, or as many small messages as fit. */
  take(): Packed | undefined {
    const first = this.items[this.head];
    if (first === undefined) return undefined;
    if (first.parts > 1) {
      const k = first.nextPart;
      const data = first.data.subarray(k * this.fragmentBytes, (k + 1) * this.fragmentBytes);
      first.nextPart++;
      if (first.nextPart === first.parts) this.pop();
      return {
        mode: first.mode,
        items: [{ origin: first.origin, part: k, parts: first.parts, data }],
      };
    }
    const items: Item[] = [];
    let size = DATAGRAM_HEADER_BYTES;
    for (;;) {
      const p = this.items[this.head];
      if (p === undefined || p.parts > 1 || p.mode !== first.mode) break;
      const add = itemBytes(p.data.length);
      if (items.length > 0 && size + add > this.mtuBytes) break;
      items.push({ origin: p.origin, part: 0, parts: 1, data: p.data });
      size += add;
      this.pop();
    }
    assert(
      items.length >= 1 && size <= this.mtuBytes,
      'a datagram carries 1+ items within the mtu',
    );
    return { mode: first.mode, items };
  }

  private pop(): void {
    const p = this.items[this.head]!;
    this.bytesQueued -= p.data.length;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
  }
}
