/**
 * The peer transport seam: fire-and-forget messages between node ids. Protocol cores
 * tolerate loss, duplication and reordering, so the transport promises only best effort
 * and per-sender FIFO while a connection lasts; in exchange `send` never blocks.
 */
import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * - queued: accepted into the peer's send queue.
 * - queued-dropped-oldest: accepted, but the queue was full, so its oldest message was dropped.
 * - unknown-peer: no such peer (never added, or removed); nothing queued.
 * - too-large: the encoded message exceeds `frameBytesMax`; nothing queued.
 * - stopped: the transport is not running.
 */
export type SendResult =
  | 'queued'
  | 'queued-dropped-oldest'
  | 'unknown-peer'
  | 'too-large'
  | 'stopped';

export type MessageHandler<M> = (from: NodeId, msg: M) => void;

/** A link to `peer` came up (`true`) or went down (`false`). */
export type LinkHandler = (peer: NodeId, up: boolean) => void;

export interface PeerStats {
  readonly connected: boolean;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  readonly sentMessages: number;
  /** Encoded bytes handed to the socket (frames with their headers). */
  readonly sentBytes: number;
  /** Socket writes (or, in memory, delivery rounds) that carried those messages. */
  readonly writes: number;
  readonly droppedMessages: number;
}

export interface Transport<M> {
  readonly id: NodeId;
  /** Starts listening; resolves with the address peers should dial. */
  start(): Promise<PeerAddress>;
  /** Closes every connection and the listener; queued messages are discarded. */
  stop(): Promise<void>;
  /** Adds a peer or changes its address (membership change); existing queues are kept. */
  addPeer(id: NodeId, address: PeerAddress): void;
  /** Forgets a peer and drops its queue. Messages it already sent may still arrive. */
  removePeer(id: NodeId): void;
  send(to: NodeId, msg: M): SendResult;
  /**
   * Hands every queued message to the wire now instead of at the end of the turn: for
   * messages on a request's critical path (a leader's appends, a forwarded call).
   */
  flush(): void;
  /** The one receiver of incoming messages; set it before `start`. */
  onMessage(handler: MessageHandler<M>): void;
  /**
   * The one receiver of link changes, for transports with connections: told when the link to
   * a peer comes up and when it goes down (a failed dial included), so a node can stop
   * waiting on a peer it cannot reach. A link never reported is taken to be up.
   */
  onLinkChange?(handler: LinkHandler): void;
  peerStats(id: NodeId): PeerStats | undefined;
}

export interface QueueLimits {
  /** Messages queued per peer before the oldest is dropped. */
  readonly queueMessagesMax: number;
  /** Bytes queued per peer before the oldest are dropped. */
  readonly queueBytesMax: number;
}

/**
 * A per-peer send queue bounded by count and bytes. When full it drops the OLDEST message:
 * a peer that has fallen that far behind needs the newest state (current term, latest
 * commit, fresh heartbeat) more than stale ones, and every protocol here retransmits or
 * catches up anything it still needs. etcd's raft transport drops the newest instead, which
 * keeps stale votes and heartbeats queued ahead of what the peer could act on.
 */
export class SendQueue {
  private items: Uint8Array[] = [];
  private head = 0;
  bytes = 0;
  dropped = 0;

  constructor(private readonly limits: QueueLimits) {
    validateQueueLimits(limits);
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Returns whether an old message was dropped to make room. */
  push(frame: Uint8Array): boolean {
    assert(frame.length <= this.limits.queueBytesMax, 'a frame larger than the whole queue');
    let droppedAny = false;
    while (
      this.length > 0 &&
      (this.length + 1 > this.limits.queueMessagesMax ||
        this.bytes + frame.length > this.limits.queueBytesMax)
    ) {
      this.shift();
      this.dropped += 1;
      droppedAny = true;
    }
    this.items.push(frame);
    this.bytes += frame.length;
    return droppedAny;
  }

  /** Takes queued frames, oldest first, up to `bytesMax` (at least one if any). */
  take(bytesMax: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let bytes = 0;
    while (this.length > 0) {
      const next = this.items[this.head] as Uint8Array;
      if (out.length > 0 && bytes + next.length > bytesMax) break;
      out.push(this.shift());
      bytes += next.length;
    }
    return out;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }

  private shift(): Uint8Array {
    const item = this.items[this.head] as Uint8Array;
    this.head += 1;
    this.bytes -= item.length;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

export function validateQueueLimits(l: QueueLimits): void {
  assert(
    Number.isSafeInteger(l.queueMessagesMax) && l.queueMessagesMax >= 1,
    'queueMessagesMax must be >= 1',
  );
  assert(
    Number.isSafeInteger(l.queueBytesMax) && l.queueBytesMax >= 1,
    'queueBytesMax must be >= 1',
  );
}
