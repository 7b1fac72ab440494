/**
 * The real `Transport`: TCP (or TLS) between peers, framed (frame.ts), encoded by a codec,
 * mutually authenticated with a cluster secret (handshake.ts).
 *
 * Each node dials every peer it sends to (peer-link.ts) and accepts the connections its
 * peers dial; a connection carries messages in the dialler's direction, and back only when
 * the accepting side answers on it with `sendBack` (gossip's push-pull reply: one
 * connection per exchange, as memberlist's). Two sockets per pair otherwise, but no
 * tie-breaking between simultaneous dials and no shared state between directions. Anything wrong on an inbound connection (random bytes, an unknown frame
 * version, an oversized frame, a wrong secret, a slow handshake, an undecodable message)
 * closes THAT connection and is logged; the node and its other connections carry on.
 */
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { assertNodeId } from '../../kernel/ids.ts';
import type { Codec } from './codec.ts';
import { msgpackCodec } from './codec.ts';
import { encodeFrame, FRAME_HEADER_BYTES, FrameDecoder } from './frame.ts';
import type { Challenge } from './handshake.ts';
import {
  clientProof,
  decodeHello,
  encodeChallenge,
  encodeWelcome,
  newNonce,
  proofsEqual,
  serverProof,
} from './handshake.ts';
import type { LinkSettings, TlsOptions } from './peer-link.ts';
import { HANDSHAKE_FRAME_BYTES_MAX, PeerLink } from './peer-link.ts';
import type {
  LinkHandler,
  MessageHandler,
  PeerAddress,
  PeerStats,
  SendResult,
  Transport,
} from './transport.ts';
import { validateQueueLimits } from './transport.ts';

export type { TlsOptions } from './peer-link.ts';

export interface TcpTransportOptions<M> {
  readonly id: NodeId;
  /** Shared by every member of the cluster; at least 16 bytes (a string is taken as UTF-8). */
  readonly secret: Uint8Array | string;
  /** Where to listen. Default 127.0.0.1 on an ephemeral port. */
  readonly listen?: { readonly host?: string; readonly port?: number };
  readonly codec?: Codec<M>;
  /** Largest encoded message. Default 16 MiB. */
  readonly frameBytesMax?: number;
  /** Per-peer send queue bounds. Defaults 4096 messages, 64 MiB. */
  readonly queueMessagesMax?: number;
  readonly queueBytesMax?: number;
  /** Bytes per socket write when draining a queue. Default 1 MiB. */
  readonly writeBytesMax?: number;
  /** Default 5000 ms. */
  readonly handshakeTimeoutMs?: number;
  /** Redial delays double from base to max, with jitter. Defaults 50 ms and 5000 ms. */
  readonly reconnectBaseMs?: number;
  readonly reconnectMaxMs?: number;
  /** Inbound connections at once (authenticated or not). Default 256. */
  readonly inboundConnectionsMax?: number;
  /** Wraps peer connections in mutually authenticated TLS. */
  readonly tls?: TlsOptions;
  /** Default: warnings to console.warn, info dropped. */
  readonly log?: (level: 'info' | 'warn', message: string) => void;
  /** Told the size of every socket write to a peer (a metrics hook; keep it cheap). */
  readonly onBytesSent?: (peer: NodeId, bytes: number) => void;
}

export class TcpTransport<M> implements Transport<M> {
  readonly id: NodeId;
  private readonly settings: LinkSettings;
  private readonly codec: Codec<M>;
  private readonly frameBytesMax: number;
  private readonly inboundMax: number;
  private readonly listenAt: { host: string; port: number };
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly addresses = new Map<NodeId, PeerAddress>();
  private readonly inbound = new Set<Socket>();
  /** Each peer's latest inbound connection that carried a message, for `sendBack`. */
  private readonly inboundByPeer = new Map<NodeId, Socket>();
  private handler: MessageHandler<M> = () => {};
  private linkHandler: LinkHandler = () => {};
  private server: Server | undefined;
  /** Inbound connections closed for a protocol or authentication failure. */
  rejectedConnections = 0;

  constructor(options: TcpTransportOptions<M>) {
    assertNodeId(options.id);
    this.id = options.id;
    const secret =
      typeof options.secret === 'string'
        ? new TextEncoder().encode(options.secret)
        : options.secret;
    assert(secret.length >= 16, 'the cluster secret must be at least 16 bytes');
    this.codec = options.codec ?? msgpackCodec<M>();
    this.frameBytesMax = options.frameBytesMax ?? 16 * 1024 * 1024;
    this.inboundMax = options.inboundConnectionsMax ?? 256;
    this.listenAt = { host: options.listen?.host ?? '127.0.0.1', port: options.listen?.port ?? 0 };
    const log =
      options.log ??
      ((level, message) => level === 'warn' && console.warn(`[transport ${this.id}] ${message}`));
    this.settings = {
      selfId: this.id,
      secret,
      limits: {
        queueMessagesMax: options.queueMessagesMax ?? 4096,
        queueBytesMax: options.queueBytesMax ?? 64 * 1024 * 1024,
      },
      writeBytesMax: options.writeBytesMax ?? 1024 * 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000,
      reconnectBaseMs: options.reconnectBaseMs ?? 50,
      reconnectMaxMs: options.reconnectMaxMs ?? 5000,
      tls: options.tls,
      log,
      onBytesSent: options.onBytesSent,
      onLink: (peer, up) => this.linkHandler(peer, up),
      frameBytesMax: options.frameBytesMax ?? 16 * 1024 * 1024,
      onFrame: (peer, frame) => this.decodeAndDeliver(peer, frame),
    };
    validate(this.settings, this.frameBytesMax, this.inboundMax);
  }

  async start(): Promise<PeerAddress> {
    assert(this.server === undefined, 'transport already started');
    const tls = this.settings.tls;
    const server = tls
      ? createTlsServer(
          { key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: true, rejectUnauthorized: true },
          (s) => this.accept(s),
        )
      : createNetServer((s) => this.accept(s));
    server.on('tlsClientError', (e: Error) => {
      this.rejectedConnections += 1;
      this.settings.log('warn', `TLS handshake failed: ${e.message}`);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenAt.port, this.listenAt.host, () => resolve());
    });
    for (const [id, address] of this.addresses)
      this.links.set(id, new PeerLink(this.settings, id, address));
    const bound = server.address();
    assert(bound !== null && typeof bound === 'object', 'a TCP server has an address');
    return { host: this.listenAt.host, port: bound.port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const s of this.inbound) s.destroy();
    this.inboundByPeer.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  addPeer(id: NodeId, address: PeerAddress): void {
    assertNodeId(id);
    assert(id !== this.id, 'a node is not its own peer');
    this.addresses.set(id, address);
    if (this.server === undefined) return;
    const link = this.links.get(id);
    if (link) link.setAddress(address);
    else this.links.set(id, new PeerLink(this.settings, id, address));
  }

  /**
   * Dials `address` without knowing who listens there (a seed given as host:port): the
   * peer's challenge names it, and the connection goes on as that peer's link, so the first
   * message to it needs no second connection. Resolves with the id once the handshake is
   * done (also when a link to that peer already existed: the new connection is closed),
   * undefined if it fails, times out, or is ourselves.
   */
  dialAddress(address: PeerAddress, timeoutMs: number): Promise<NodeId | undefined> {
    if (this.server === undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let settled = false;
      const finish = (id: NodeId | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(id);
      };
      const link: PeerLink = new PeerLink(this.settings, undefined, address, {
        identify: (id) => {
          if (id === this.id || this.server === undefined) {
            finish(undefined);
            return false;
          }
          if (this.links.has(id)) {
            finish(id);
            return false;
          }
          this.links.set(id, link);
          this.addresses.set(id, address);
          return true;
        },
        ready: (id) => finish(id),
        failed: () => {
          for (const [id, l] of this.links) {
            if (l !== link) continue;
            this.links.delete(id);
            this.addresses.delete(id);
          }
          finish(undefined);
        },
      });
      const timer = setTimeout(() => {
        if (settled) return;
        for (const [id, l] of this.links) if (l === link) this.removePeer(id);
        link.close();
        finish(undefined);
      }, timeoutMs);
    });
  }

  /**
   * Sends on the connection `to` dialled to us and sent a message on, if it takes this now
   * (its unsent backlog within `queueBytesMax`): the answer to a message it just sent, with
   * no connection of our own to set up. 'unknown-peer' when there is none; use `send`.
   */
  sendBack(to: NodeId, msg: M): SendResult {
    if (this.server === undefined) return 'stopped';
    const socket = this.inboundByPeer.get(to);
    if (socket === undefined || socket.destroyed || !socket.writable) return 'unknown-peer';
    const payload = this.codec.encode(msg);
    if (payload.length > this.frameBytesMax) return 'too-large';
    const frame = encodeFrame(payload);
    if (socket.writableLength + frame.length > this.settings.limits.queueBytesMax)
      return 'unknown-peer';
    socket.write(frame);
    return 'queued';
  }

  removePeer(id: NodeId): void {
    this.addresses.delete(id);
    this.links.get(id)?.close();
    this.links.delete(id);
  }

  /**
   * Writes every peer's queue now. For messages on a request's critical path (a leader's
   * appends, a forwarded call): the end-of-turn flush would hold them behind the rest of
   * the turn's work (a WAL write's encoding, other callbacks).
   */
  flush(): void {
    for (const link of this.links.values()) link.flushNow();
  }

  send(to: NodeId, msg: M): SendResult {
    if (this.server === undefined) return 'stopped';
    const link = this.links.get(to);
    if (link === undefined) return 'unknown-peer';
    const payload = this.codec.encode(msg);
    if (payload.length > this.frameBytesMax) return 'too-large';
    return link.enqueue(encodeFrame(payload)) ? 'queued-dropped-oldest' : 'queued';
  }

  onMessage(handler: MessageHandler<M>): void {
    this.handler = handler;
  }

  onLinkChange(handler: LinkHandler): void {
    this.linkHandler = handler;
  }

  peerStats(id: NodeId): PeerStats | undefined {
    return this.links.get(id)?.stats();
  }

  private accept(socket: Socket): void {
    if (this.inbound.size >= this.inboundMax) {
      this.reject(socket, 'too many inbound connections');
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const challenge: Challenge = { serverId: this.id, serverNonce: newNonce() };
    let decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
    let peer: NodeId | undefined;
    const timer = setTimeout(
      () => this.reject(socket, `handshake timeout from ${remote}`),
      this.settings.handshakeTimeoutMs,
    );
    socket.on('data', (chunk: Buffer) => {
      const result = decoder.push(chunk);
      if (!result.ok) return this.reject(socket, `${result.error} from ${peer ?? remote}`);
      for (const frame of result.frames) {
        if (peer !== undefined) {
          // Answerable once the peer has spoken: it has read our welcome by then, so what
          // we send back never shares a read with the handshake's last frame.
          if (this.inboundByPeer.get(peer) !== socket) this.inboundByPeer.set(peer, socket);
          if (!this.deliver(socket, peer, frame)) return;
          continue;
        }
        peer = this.authenticate(socket, challenge, frame, remote);
        if (peer === undefined) return;
        clearTimeout(timer);
        this.links.get(peer)?.peerIsBack();
        if (result.frames.length > 1 || !decoder.idle()) {
          return this.reject(socket, `node ${peer} sent messages before the handshake finished`);
        }
        decoder = new FrameDecoder(this.frameBytesMax);
      }
    });
    socket.on('error', (e) => this.settings.log('info', `inbound ${peer ?? remote}: ${e.message}`));
    socket.on('close', () => {
      clearTimeout(timer);
      this.inbound.delete(socket);
      if (peer !== undefined && this.inboundByPeer.get(peer) === socket)
        this.inboundByPeer.delete(peer);
    });
    socket.write(encodeFrame(encodeChallenge(challenge)));
  }

  /** Checks a HELLO; answers with WELCOME and returns the peer's id, or closes the socket. */
  private authenticate(socket: Socket, challenge: Challenge, frame: Uint8Array, remote: string) {
    const hello = decodeHello(frame);
    if (hello === undefined) return this.reject(socket, `malformed handshake from ${remote}`);
    if (hello.targetId !== this.id) {
      return this.reject(
        socket,
        `${remote} (node ${hello.clientId}) wanted node ${hello.targetId}`,
      );
    }
    const expected = clientProof(
      this.settings.secret,
      challenge,
      hello.clientId,
      hello.clientNonce,
    );
    if (!proofsEqual(hello.proof, expected)) {
      return this.reject(
        socket,
        `${remote} claiming node ${hello.clientId} failed authentication (wrong cluster secret?)`,
      );
    }
    socket.write(encodeFrame(encodeWelcome(serverProof(this.settings.secret, challenge, hello))));
    return hello.clientId;
  }

  private deliver(socket: Socket, from: NodeId, frame: Uint8Array): boolean {
    if (this.decodeAndDeliver(from, frame)) return true;
    this.reject(socket, `undecodable message from node ${from}`);
    return false;
  }

  /** Decodes a frame from `from` and hands it on; false if it does not decode. */
  private decodeAndDeliver(from: NodeId, frame: Uint8Array): boolean {
    let msg: M;
    try {
      msg = this.codec.decode(frame);
    } catch (e) {
      this.settings.log('warn', `undecodable message from node ${from}: ${(e as Error).message}`);
      return false;
    }
    this.handler(from, msg);
    return true;
  }

  private reject(socket: Socket, why: string): undefined {
    this.rejectedConnections += 1;
    this.settings.log('warn', `closing inbound connection: ${why}`);
    socket.destroy();
    return undefined;
  }
}

function validate(s: LinkSettings, frameBytesMax: number, inboundMax: number): void {
  validateQueueLimits(s.limits);
  const positive = (n: number) => Number.isSafeInteger(n) && n > 0;
  assert(positive(frameBytesMax), 'frameBytesMax must be a positive integer');
  assert(
    frameBytesMax + FRAME_HEADER_BYTES <= s.limits.queueBytesMax,
    'queueBytesMax must hold the largest frame',
  );
  assert(positive(s.writeBytesMax), 'writeBytesMax must be a positive integer');
  assert(positive(s.handshakeTimeoutMs), 'handshakeTimeoutMs must be positive');
  assert(
    positive(s.reconnectBaseMs) && s.reconnectMaxMs >= s.reconnectBaseMs,
    'need 0 < reconnectBaseMs <= reconnectMaxMs',
  );
  assert(positive(inboundMax), 'inboundConnectionsMax must be positive');
}
