/**
 * The datagram `Transport`: UDP between peers for a gossip core's probes and rumours. Each
 * message is one datagram, sealed (datagram-seal.ts): AES-256-GCM, a key id for rotation,
 * the cluster name as associated data, a replay window per sender. Nothing is queued and
 * nothing retried: the gossip core tolerates loss, duplication and reordering, and its
 * byte model keeps what it sends within `packetBytesMax`; anything larger is refused with
 * `too-large`. Every datagram that fails a check is dropped and counted by reason; the
 * transport never throws on input. Stream messages (push-pull) go over TcpTransport.
 */
import { createSocket, type Socket } from 'node:dgram';
import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { assertNodeId } from '../../kernel/ids.ts';
import type { Codec } from './codec.ts';
import {
  type DatagramKey,
  deriveDatagramKey,
  openDatagram,
  openPlainDatagram,
  plainDatagram,
  ReplayWindow,
  SEAL_OVERHEAD_BYTES,
  sealDatagram,
} from './datagram-seal.ts';
import type { MessageHandler, PeerAddress, PeerStats, SendResult, Transport } from './transport.ts';

export interface UdpTransportOptions<M> {
  readonly id: NodeId;
  readonly clusterName: string;
  /** The cluster secret (at least 16 bytes), from which each key id's key is derived. */
  readonly secret: Uint8Array | string;
  /** The key id we send with; 0 unless rotating. */
  readonly keyId?: number;
  /** Further key ids we accept (the previous one during a rotation). */
  readonly acceptKeyIds?: readonly number[];
  readonly codec: Codec<M>;
  readonly host?: string;
  readonly port?: number;
  /** A whole datagram, seal included; default 1,400 B (fits a 1,500 B MTU with IP and UDP headers). */
  readonly packetBytesMax?: number;
  /** Counters remembered per sender; default 1,024. */
  readonly replayWindow?: number;
  /** The first counter; default the wall clock in microseconds (see datagram-seal.ts). */
  readonly firstCounter?: bigint;
  /**
   * `aes-256-gcm` (the default) seals every datagram. `insecure-none` sends them in the
   * clear and unauthenticated: anyone who can reach the port can read and forge traffic.
   * For benchmarks and trusted networks only; it must be named, there is no shorthand.
   */
  readonly crypto?: DatagramCrypto;
  /**
   * Send to each peer from a socket of its own, connected to it (default false: one socket
   * for all). The kernel then resolves the route once, not at every datagram, and Node skips
   * its per-send address lookup; a ring that sends every datagram to every member spends
   * much of its CPU in `send`. Costs a descriptor per peer, so not for large gossip clusters.
   * Receivers do not care: the sender is named inside the datagram, not by its address.
   */
  readonly connectPeers?: boolean;
  /**
   * The caller never changes a message object after sending it (default false). The same
   * object sent to several peers in a row (a broadcast) is then encoded and sealed once, and
   * the one datagram goes to each of them, as a multicast would: its counter is the
   * sender's, and every receiver keeps its own window, so each accepts it once. Halves the
   * AES-GCM work of a broadcast to two peers.
   */
  readonly immutableMessages?: boolean;
}

export type DatagramCrypto = 'aes-256-gcm' | 'insecure-none';
export const DATAGRAM_CRYPTO_MODES: readonly DatagramCrypto[] = ['aes-256-gcm', 'insecure-none'];

/** Why a received datagram was dropped. */
export type DatagramDrop =
  | 'oversize'
  | 'truncated'
  | 'version'
  | 'unknown-key'
  | 'auth'
  | 'replay'
  | 'malformed'
  | 'own';

export const PACKET_BYTES_DEFAULT = 1_400;

interface Peer {
  address: PeerAddress;
  /** Its connected socket (connectPeers), once connected; until then the shared one sends. */
  socket: Socket | undefined;
  sentMessages: number;
  sentBytes: number;
  dropped: number;
}

export class UdpTransport<M> implements Transport<M> {
  readonly id: NodeId;
  readonly packetBytesMax: number;
  readonly drops: Record<DatagramDrop, number> = {
    oversize: 0,
    truncated: 0,
    version: 0,
    'unknown-key': 0,
    auth: 0,
    replay: 0,
    malformed: 0,
    own: 0,
  };
  received = 0;
  private readonly keys = new Map<number, DatagramKey>();
  private readonly sendKey: DatagramKey;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly windows = new Map<NodeId, ReplayWindow>();
  private readonly windowSize: number;
  private readonly sealed: boolean;
  private counter: bigint;
  private socket: Socket | undefined;
  private handler: MessageHandler<M> | undefined;
  /**
   * With immutableMessages: the last message sent, its datagram, and who got that datagram.
   * A peer sent the same message again (a token retransmission) gets a fresh counter, or
   * its replay window would drop the copy it is meant to answer.
   */
  private lastMsg: M | undefined;
  private lastDatagram: Buffer | undefined;
  private readonly lastTo = new Set<NodeId>();

  constructor(private readonly options: UdpTransportOptions<M>) {
    assertNodeId(options.id);
    this.id = options.id;
    this.packetBytesMax = options.packetBytesMax ?? PACKET_BYTES_DEFAULT;
    assert(
      Number.isInteger(this.packetBytesMax) &&
        this.packetBytesMax > SEAL_OVERHEAD_BYTES &&
        this.packetBytesMax <= 65_507,
      `packetBytesMax must be in ${SEAL_OVERHEAD_BYTES + 1}..65507, got ${this.packetBytesMax}`,
    );
    assert(options.clusterName.length > 0, 'clusterName must not be empty');
    this.sendKey = deriveDatagramKey(options.secret, options.keyId ?? 0);
    this.keys.set(this.sendKey.id, this.sendKey);
    for (const k of options.acceptKeyIds ?? [])
      this.keys.set(k, deriveDatagramKey(options.secret, k));
    const crypto = options.crypto ?? 'aes-256-gcm';
    assert(
      DATAGRAM_CRYPTO_MODES.includes(crypto),
      `crypto must be one of ${DATAGRAM_CRYPTO_MODES.join(', ')}, got '${String(crypto)}'`,
    );
    this.sealed = crypto === 'aes-256-gcm';
    this.windowSize = options.replayWindow ?? 1_024;
    new ReplayWindow(this.windowSize); // validates the size up front
    this.counter = options.firstCounter ?? BigInt(Date.now()) * 1000n;
  }

  start(): Promise<PeerAddress> {
    assert(this.socket === undefined, 'UDP transport already started');
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (data) => this.onDatagram(data));
    socket.on('error', () => {});
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        socket.off('error', reject);
        const a = socket.address();
        for (const p of this.peers.values()) this.connectPeer(p);
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    for (const p of this.peers.values()) this.disconnectPeer(p);
    if (socket === undefined) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }

  private connectPeer(p: Peer): void {
    if (this.options.connectPeers !== true || this.socket === undefined) return;
    const s = createSocket('udp4');
    // A peer that is down answers with port unreachable, which a connected socket reports
    // as an error on a later send: loss, which the protocol above tolerates.
    s.on('error', () => {});
    const address = p.address;
    s.connect(address.port, address.host, () => {
      // Connected to an address the peer has since left, or after stop: not used.
      if (p.address !== address || this.socket === undefined) s.close();
      else p.socket = s;
    });
  }

  private disconnectPeer(p: Peer): void {
    p.socket?.close();
    p.socket = undefined;
  }

  addPeer(id: NodeId, address: PeerAddress): void {
    assertNodeId(id, 'peer id');
    const p = this.peers.get(id);
    if (p !== undefined) {
      if (p.address.host === address.host && p.address.port === address.port) return;
      this.disconnectPeer(p);
      p.address = address;
      this.connectPeer(p);
      return;
    }
    const added: Peer = { address, socket: undefined, sentMessages: 0, sentBytes: 0, dropped: 0 };
    this.peers.set(id, added);
    this.connectPeer(added);
  }

  removePeer(id: NodeId): void {
    const p = this.peers.get(id);
    if (p !== undefined) this.disconnectPeer(p);
    this.peers.delete(id);
    this.windows.delete(id);
  }

  onMessage(handler: MessageHandler<M>): void {
    this.handler = handler;
  }

  send(to: NodeId, msg: M): SendResult {
    const socket = this.socket;
    if (socket === undefined) return 'stopped';
    const peer = this.peers.get(to);
    if (peer === undefined) return 'unknown-peer';
    let datagram = msg === this.lastMsg && !this.lastTo.has(to) ? this.lastDatagram : undefined;
    if (datagram === undefined) {
      const plain = this.options.codec.encode(msg);
      if (plain.length + SEAL_OVERHEAD_BYTES > this.packetBytesMax) {
        peer.dropped++;
        return 'too-large';
      }
      this.counter++;
      datagram = this.sealed
        ? sealDatagram(this.sendKey, this.options.clusterName, this.id, this.counter, plain)
        : plainDatagram(this.id, this.counter, plain);
      if (this.options.immutableMessages === true) {
        this.lastMsg = msg;
        this.lastDatagram = datagram;
        this.lastTo.clear();
      }
    }
    if (this.options.immutableMessages === true) this.lastTo.add(to);
    if (peer.socket !== undefined) peer.socket.send(datagram);
    else socket.send(datagram, peer.address.port, peer.address.host);
    peer.sentMessages++;
    peer.sentBytes += datagram.length;
    return 'queued';
  }

  /** Nothing waits: every datagram is handed to the socket as it is sent. */
  flush(): void {}

  peerStats(id: NodeId): PeerStats | undefined {
    const p = this.peers.get(id);
    if (p === undefined) return undefined;
    return {
      connected: true,
      queuedMessages: 0,
      queuedBytes: 0,
      sentMessages: p.sentMessages,
      sentBytes: p.sentBytes,
      writes: p.sentMessages,
      droppedMessages: p.dropped,
    };
  }

  /** Total datagrams dropped on receipt, all reasons. */
  droppedTotal(): number {
    return Object.values(this.drops).reduce((a, b) => a + b, 0);
  }

  private onDatagram(data: Buffer): void {
    if (data.length > this.packetBytesMax) {
      this.drops.oversize++;
      return;
    }
    const opened = this.sealed
      ? openDatagram(this.keys, this.options.clusterName, data)
      : openPlainDatagram(data);
    if (!opened.ok) {
      this.drops[opened.reason]++;
      return;
    }
    if (opened.sender === this.id) {
      this.drops.own++;
      return;
    }
    let window = this.windows.get(opened.sender);
    if (window === undefined) {
      window = new ReplayWindow(this.windowSize);
      this.windows.set(opened.sender, window);
    }
    let msg: M;
    try {
      msg = this.options.codec.decode(opened.plaintext);
    } catch {
      this.drops.malformed++;
      return;
    }
    // Only an authentic, decodable datagram moves the window, so garbage cannot shift it.
    if (!window.accept(opened.counter)) {
      this.drops.replay++;
      return;
    }
    this.received++;
    this.handler?.(opened.sender, msg);
  }
}
