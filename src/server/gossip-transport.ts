/**
 * The gossip agent's `Transport`: one port number, UDP for the core's datagrams (sealed:
 * datagram-seal.ts) and authenticated TCP for its stream kinds (push-pull, events), as
 * memberlist does on 7946. Both directions are counted per message kind, with the seal or
 * frame overhead, for the agent's metrics. It decides nothing: which kind goes where is
 * the core's `isStreamMessage`.
 */
import {
  type GossipMsg,
  type GossipMsgType,
  gossipMsgTypes,
  isStreamMessage,
} from '../gossip/index.ts';
import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { Codec } from '../runtime/transport/codec.ts';
import { SEAL_OVERHEAD_BYTES } from '../runtime/transport/datagram-seal.ts';
import { FRAME_HEADER_BYTES } from '../runtime/transport/frame.ts';
import { gossipDatagramCodec } from '../runtime/transport/gossip-codec.ts';
import { TcpTransport } from '../runtime/transport/tcp-transport.ts';
import type {
  MessageHandler,
  PeerAddress,
  PeerStats,
  SendResult,
  Transport,
} from '../runtime/transport/transport.ts';
import { UdpTransport } from '../runtime/transport/udp-transport.ts';

export interface KindCount {
  messages: number;
  bytes: number;
}

export type KindCounts = Record<GossipMsgType, KindCount>;

function kindCounts(): KindCounts {
  const out = {} as KindCounts;
  for (const k of gossipMsgTypes) out[k] = { messages: 0, bytes: 0 };
  return out;
}

/** Wraps the gossip codec so every encoded and decoded message is counted by kind. */
function countingCodec(sent: KindCounts, received: KindCounts, overhead: number): Codec<GossipMsg> {
  return {
    encode(msg) {
      const bytes = gossipDatagramCodec.encode(msg);
      const c = sent[msg.type];
      c.messages++;
      c.bytes += bytes.length + overhead;
      return bytes;
    },
    decode(bytes) {
      const msg = gossipDatagramCodec.decode(bytes);
      const c = received[msg.type];
      c.messages++;
      c.bytes += bytes.length + overhead;
      return msg;
    },
  };
}

/**
 * A frame of another service riding the agent's authenticated streams (the anti-entropy
 * store, gossip-store.ts): opaque bytes after a code no gossip message uses.
 */
export interface ServiceFrame {
  readonly type: 'service';
  readonly bytes: Uint8Array;
}
const SERVICE_CODE = 0xf0;
type StreamMsg = GossipMsg | ServiceFrame;

/** The stream codec: gossip messages as on datagrams, service frames after their code. */
function streamCodec(gossip: Codec<GossipMsg>, service: KindCount[]): Codec<StreamMsg> {
  const [sent, received] = service as [KindCount, KindCount];
  return {
    encode(msg) {
      if (msg.type !== 'service') return gossip.encode(msg);
      const out = new Uint8Array(msg.bytes.length + 1);
      out[0] = SERVICE_CODE;
      out.set(msg.bytes, 1);
      sent.messages++;
      sent.bytes += out.length + FRAME_HEADER_BYTES;
      return out;
    },
    decode(bytes) {
      if (bytes[0] !== SERVICE_CODE) return gossip.decode(bytes);
      received.messages++;
      received.bytes += bytes.length + FRAME_HEADER_BYTES;
      return { type: 'service', bytes: bytes.subarray(1) };
    },
  };
}

export interface GossipTransportOptions {
  readonly id: NodeId;
  readonly clusterName: string;
  readonly secret: string;
  readonly host: string;
  /** 0: an ephemeral port, the same number for UDP and TCP. */
  readonly port: number;
  readonly packetBytesMax: number;
  readonly log?: (level: 'info' | 'warn', message: string) => void;
}

/** Times we try a fresh ephemeral TCP port whose UDP twin is taken. */
const BIND_ATTEMPTS_MAX = 20;

export class GossipTransport implements Transport<GossipMsg> {
  readonly id: NodeId;
  readonly sent = kindCounts();
  readonly received = kindCounts();
  /** Service frames sent and received (index 0 and 1), frame headers included. */
  readonly service: KindCount[] = [
    { messages: 0, bytes: 0 },
    { messages: 0, bytes: 0 },
  ];
  private udp: UdpTransport<GossipMsg>;
  private tcp: TcpTransport<StreamMsg>;
  private handler: MessageHandler<GossipMsg> = () => {};
  private serviceHandler: MessageHandler<Uint8Array> = () => {};
  private address: PeerAddress | undefined;
  private readonly streamAddresses = new Map<NodeId, PeerAddress>();
  /** Peers added to the TCP transport (its links dial at once), bounded by the membership. */
  private readonly streamPeers = new Set<NodeId>();
  private starting: Promise<PeerAddress> | undefined;

  constructor(private readonly options: GossipTransportOptions) {
    this.id = options.id;
    this.udp = this.makeUdp(options.port);
    this.tcp = this.makeTcp(options.port);
  }

  private makeUdp(port: number): UdpTransport<GossipMsg> {
    const o = this.options;
    const udp = new UdpTransport<GossipMsg>({
      id: o.id,
      clusterName: o.clusterName,
      secret: o.secret,
      codec: countingCodec(this.sent, this.received, SEAL_OVERHEAD_BYTES),
      host: o.host,
      port,
      packetBytesMax: o.packetBytesMax,
    });
    udp.onMessage((from, msg) => this.handler(from, msg));
    return udp;
  }

  private makeTcp(port: number): TcpTransport<StreamMsg> {
    const o = this.options;
    const gossip = countingCodec(this.sent, this.received, FRAME_HEADER_BYTES);
    const tcp = new TcpTransport<StreamMsg>({
      id: o.id,
      secret: o.secret,
      listen: { host: o.host, port },
      codec: streamCodec(gossip, this.service),
      // Push-pull of 10,000 members with 512 B tags is ~6 MB; a stalled peer keeps few.
      queueMessagesMax: 64,
      queueBytesMax: 64 * 1024 * 1024,
      ...(o.log === undefined ? {} : { log: o.log }),
    });
    tcp.onMessage((from, msg) =>
      msg.type === 'service' ? this.serviceHandler(from, msg.bytes) : this.handler(from, msg),
    );
    return tcp;
  }

  /** Binds TCP, then UDP on the same number; idempotent (the agent starts it before the host). */
  start(): Promise<PeerAddress> {
    this.starting ??= this.bind();
    return this.starting;
  }

  private async bind(): Promise<PeerAddress> {
    for (let attempt = 0; ; attempt++) {
      const tcpAddress = await this.tcp.start();
      try {
        this.udp = this.makeUdp(tcpAddress.port);
        await this.udp.start();
        this.address = tcpAddress;
        return tcpAddress;
      } catch (err) {
        await this.tcp.stop();
        // A fixed port that is taken is the operator's problem; an ephemeral one we retry.
        if (this.options.port !== 0 || attempt + 1 >= BIND_ATTEMPTS_MAX) throw err;
        this.tcp = this.makeTcp(0);
      }
    }
  }

  /** The bound address (after start). */
  get boundAddress(): PeerAddress {
    assert(this.address !== undefined, 'gossip transport not started');
    return this.address;
  }

  async stop(): Promise<void> {
    await Promise.all([this.udp.stop(), this.tcp.stop()]);
  }

  addPeer(id: NodeId, address: PeerAddress): void {
    this.udp.addPeer(id, address);
    const known = this.streamAddresses.get(id);
    this.streamAddresses.set(id, address);
    // The TCP transport dials a peer as soon as it is added; a gossip node streams to a
    // few peers a minute, so it is added on its first stream message, not here (every
    // member dialling every other as the cluster converges was N² handshakes at once).
    if (known !== undefined && this.streamPeers.has(id)) this.tcp.addPeer(id, address);
  }

  removePeer(id: NodeId): void {
    this.udp.removePeer(id);
    this.streamAddresses.delete(id);
    if (this.streamPeers.delete(id)) this.tcp.removePeer(id);
  }

  /**
   * Connects to a seed known only by address and returns its id, read from the challenge of
   * the very connection that then carries our join push-pull (and, sent back on it, the
   * seed's reply): a join is one connection and one exchange. Undefined if it does not
   * answer in `timeoutMs`, fails the handshake, or is ourselves.
   */
  async dialSeed(address: PeerAddress, timeoutMs: number): Promise<NodeId | undefined> {
    const id = await this.tcp.dialAddress(address, timeoutMs);
    if (id === undefined) return undefined;
    this.udp.addPeer(id, address);
    this.streamAddresses.set(id, address);
    this.streamPeers.add(id);
    return id;
  }

  send(to: NodeId, msg: GossipMsg): SendResult {
    if (!isStreamMessage(msg)) return this.udp.send(to, msg);
    return this.streamSend(to, msg);
  }

  /** Sends a service frame over the authenticated stream to a member we have an address of. */
  sendService(to: NodeId, bytes: Uint8Array): SendResult {
    return this.streamSend(to, { type: 'service', bytes });
  }

  /** The one receiver of service frames. */
  onService(handler: MessageHandler<Uint8Array>): void {
    this.serviceHandler = handler;
  }

  private streamSend(to: NodeId, msg: StreamMsg): SendResult {
    if (!this.streamPeers.has(to)) {
      // The peer dialled us (a joiner's push-pull): answer on its connection rather than
      // dial one of our own, a connection and a handshake the joiner would wait for.
      const back = this.tcp.sendBack(to, msg);
      if (back !== 'unknown-peer') return back;
      const address = this.streamAddresses.get(to);
      if (address === undefined) return 'unknown-peer';
      this.tcp.addPeer(to, address);
      this.streamPeers.add(to);
    }
    return this.tcp.send(to, msg);
  }

  flush(): void {
    this.tcp.flush();
  }

  onMessage(handler: MessageHandler<GossipMsg>): void {
    this.handler = handler;
  }

  peerStats(id: NodeId): PeerStats | undefined {
    return this.udp.peerStats(id);
  }

  /** Datagrams dropped on receipt by reason (bad seal, replay, malformed...). */
  datagramDrops(): Readonly<Record<string, number>> {
    return this.udp.drops;
  }

  /** Stream connections closed for a protocol or authentication failure. */
  rejectedStreams(): number {
    return this.tcp.rejectedConnections;
  }
}
