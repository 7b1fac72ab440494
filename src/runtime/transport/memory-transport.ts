/**
 * The reference `Transport`: nodes in one process joined by a `MemoryNetwork`. Same queue
 * bounds and drop policy as TCP; delivery happens on a later macrotask, never inside `send`,
 * so handlers see the same re-entrancy as with real sockets.
 */
import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { Codec } from './codec.ts';
import { msgpackCodec } from './codec.ts';
import type {
  MessageHandler,
  PeerAddress,
  PeerStats,
  QueueLimits,
  SendResult,
  Transport,
} from './transport.ts';
import { SendQueue } from './transport.ts';

export class MemoryNetwork {
  private readonly nodes = new Map<NodeId, MemoryTransport<unknown>>();

  attach(t: MemoryTransport<unknown>): void {
    this.nodes.set(t.id, t);
  }

  detach(t: MemoryTransport<unknown>): void {
    if (this.nodes.get(t.id) === t) this.nodes.delete(t.id);
  }

  running(id: NodeId): MemoryTransport<unknown> | undefined {
    return this.nodes.get(id);
  }
}

export interface MemoryTransportOptions<M> extends Partial<QueueLimits> {
  readonly frameBytesMax?: number;
  readonly codec?: Codec<M>;
}

interface Peer {
  readonly queue: SendQueue;
  sent: number;
  sentBytes: number;
  writes: number;
}

export class MemoryTransport<M> implements Transport<M> {
  private readonly peers = new Map<NodeId, Peer>();
  private readonly codec: Codec<M>;
  private readonly limits: QueueLimits;
  private readonly frameBytesMax: number;
  private handler: MessageHandler<M> = () => {};
  private running = false;
  private flushScheduled = false;

  constructor(
    readonly id: NodeId,
    private readonly network: MemoryNetwork,
    options: MemoryTransportOptions<M> = {},
  ) {
    this.codec = options.codec ?? msgpackCodec<M>();
    this.limits = {
      queueMessagesMax: options.queueMessagesMax ?? 4096,
      queueBytesMax: options.queueBytesMax ?? 64 * 1024 * 1024,
    };
    this.frameBytesMax = options.frameBytesMax ?? 16 * 1024 * 1024;
    assert(this.frameBytesMax <= this.limits.queueBytesMax, 'frameBytesMax must fit in the queue');
  }

  start(): Promise<PeerAddress> {
    this.running = true;
    this.network.attach(this as MemoryTransport<unknown>);
    this.scheduleFlush();
    return Promise.resolve({ host: 'memory', port: this.id });
  }

  stop(): Promise<void> {
    this.running = false;
    this.network.detach(this as MemoryTransport<unknown>);
    for (const p of this.peers.values()) p.queue.clear();
    return Promise.resolve();
  }

  addPeer(id: NodeId, _address: PeerAddress): void {
    if (!this.peers.has(id))
      this.peers.set(id, { queue: new SendQueue(this.limits), sent: 0, sentBytes: 0, writes: 0 });
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  send(to: NodeId, msg: M): SendResult {
    if (!this.running) return 'stopped';
    const peer = this.peers.get(to);
    if (peer === undefined) return 'unknown-peer';
    const bytes = this.codec.encode(msg);
    if (bytes.length > this.frameBytesMax) return 'too-large';
    const dropped = peer.queue.push(bytes);
    this.scheduleFlush();
    return dropped ? 'queued-dropped-oldest' : 'queued';
  }

  onMessage(handler: MessageHandler<M>): void {
    this.handler = handler;
  }

  peerStats(id: NodeId): PeerStats | undefined {
    const p = this.peers.get(id);
    if (p === undefined) return undefined;
    return {
      connected: this.running && this.network.running(id) !== undefined,
      queuedMessages: p.queue.length,
      queuedBytes: p.queue.bytes,
      sentMessages: p.sent,
      sentBytes: p.sentBytes,
      writes: p.writes,
      droppedMessages: p.queue.dropped,
    };
  }

  /** Called by the network on the receiving side. */
  deliver(from: NodeId, bytes: Uint8Array): void {
    if (this.running) this.handler(from, this.codec.decode(bytes) as M);
  }

  /** Lets a sender's queue drain into this node once it (re)starts. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.drain();
    });
  }

  /** Delivery is on the next macrotask already, never inside the caller's turn (see above). */
  flush(): void {
    this.scheduleFlush();
  }

  private drain(): void {
    if (!this.running) return;
    let waiting = false;
    for (const [to, peer] of this.peers) {
      const target = this.network.running(to);
      if (target === undefined) {
        waiting ||= peer.queue.length > 0;
        continue;
      }
      if (peer.queue.length > 0) peer.writes += 1;
      for (const bytes of peer.queue.take(Number.POSITIVE_INFINITY)) {
        peer.sent += 1;
        peer.sentBytes += bytes.length;
        target.deliver(this.id, bytes);
      }
    }
    // A peer that is down gets its queue when it comes back; poll rather than couple nodes.
    if (waiting) setTimeout(() => this.scheduleFlush(), 10);
  }
}
