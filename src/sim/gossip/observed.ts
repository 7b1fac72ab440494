import type { GossipNode } from '../../gossip/node.ts';
import type { GossipMsg, GossipRequest, GossipTypes } from '../../gossip/types.ts';
import { isStreamMessage } from '../../gossip/types.ts';
import { encodeMsg, msgBytes } from '../../gossip/wire.ts';
import type { Core, Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';

/**
 * What the simulated network carried, by size: the simulator's message-size accounting for
 * gossip. Every datagram is sized by the byte model and every `encodeEvery`-th is encoded
 * too, so a datagram over the budget, or an encoding larger than the model, is a violation.
 */
export class WireLedger {
  violation: string | undefined = undefined;
  datagrams = 0;
  datagramBytes = 0;
  streams = 0;
  streamBytes = 0;
  /** Bytes per message kind, for the bandwidth report. */
  readonly bytesByType = new Map<GossipMsg['type'], number>();
  /** Messages and bytes sent at or after `windowFromMs` (local time of the sender). */
  windowMessages = 0;
  windowBytes = 0;
  windowFromMs = Number.POSITIVE_INFINITY;

  private sinceEncoded = 0;

  constructor(
    readonly packetBytesMax: number,
    /** Encode every k-th datagram (1: all); the model still sizes every one. */
    private readonly encodeEvery: number,
  ) {}

  record(from: NodeId, msg: GossipMsg, now: number): void {
    const model = msgBytes(msg);
    if (now >= this.windowFromMs) {
      this.windowMessages++;
      this.windowBytes += model;
    }
    this.bytesByType.set(msg.type, (this.bytesByType.get(msg.type) ?? 0) + model);
    if (isStreamMessage(msg)) {
      this.streams++;
      this.streamBytes += model;
      return;
    }
    this.datagrams++;
    this.datagramBytes += model;
    if (model > this.packetBytesMax) {
      this.violation ??= `datagram over budget: n${from} sent a ${msg.type} of ${model} B > packetBytesMax ${this.packetBytesMax} B`;
    }
    if (++this.sinceEncoded >= this.encodeEvery) {
      this.sinceEncoded = 0;
      const encoded = encodeMsg(msg).length;
      if (encoded > model) {
        this.violation ??= `byte model too small: a ${msg.type} encoded to ${encoded} B, model said ${model} B`;
      }
    }
  }
}

/** A gossip core whose every outgoing message is sized into the ledger before it leaves. */
export class ObservedGossip implements Core<GossipTypes> {
  readonly id: NodeId;

  constructor(
    readonly node: GossipNode,
    private readonly ledger: WireLedger,
  ) {
    this.id = node.id;
  }

  tick(now: number): void {
    this.node.tick(now);
  }
  receive(now: number, from: NodeId, msg: GossipMsg): void {
    this.node.receive(now, from, msg);
  }
  request(now: number, client: ClientId, req: GossipRequest): void {
    this.node.request(now, client, req);
  }
  deadline(): number {
    return this.node.deadline();
  }
  ready(): Ready<GossipTypes> | undefined {
    const rd = this.node.ready();
    if (rd !== undefined) {
      const now = this.node.clock;
      for (const m of rd.early) this.ledger.record(this.id, m.msg, now);
      for (const m of rd.messages) this.ledger.record(this.id, m.msg, now);
    }
    return rd;
  }
  advance(): void {
    this.node.advance();
  }
}
