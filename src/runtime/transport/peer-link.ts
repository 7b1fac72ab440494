/**
 * One outbound connection to a peer: dials, authenticates (handshake.ts), then writes the
 * peer's send queue, many frames per socket write, and redials with capped exponential
 * backoff and jitter when the connection drops. Messages flow on connections this node
 * dialled; a peer's messages arrive on the connection it dialled (see tcp-transport.ts),
 * except an answer the peer sends back on ours (`TcpTransport.sendBack`: a push-pull
 * reply), which `onFrame` receives. A link dialled by address alone (a seed) learns its
 * peer's id from the challenge and asks `Discovery.identify` whether to go on.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { encodeFrame, FrameDecoder } from './frame.ts';
import type { Challenge } from './handshake.ts';
import {
  clientProof,
  decodeChallenge,
  decodeWelcome,
  encodeHello,
  newNonce,
  proofsEqual,
  serverProof,
} from './handshake.ts';
import type { PeerAddress, PeerStats, QueueLimits } from './transport.ts';
import { SendQueue } from './transport.ts';

/** Handshake frames are tiny; a bigger one before authentication is an attack or a bug. */
export const HANDSHAKE_FRAME_BYTES_MAX = 128;

export interface TlsOptions {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
  /** The cluster CA: peers must present a certificate it signed. */
  readonly ca: string | Buffer;
}

export interface LinkSettings {
  readonly selfId: NodeId;
  readonly secret: Uint8Array;
  readonly limits: QueueLimits;
  readonly writeBytesMax: number;
  readonly handshakeTimeoutMs: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  readonly tls: TlsOptions | undefined;
  readonly log: (level: 'info' | 'warn', message: string) => void;
  readonly onBytesSent: ((peer: NodeId, bytes: number) => void) | undefined;
  /** Told when the link comes up or goes down (each change once). */
  readonly onLink: (peer: NodeId, up: boolean) => void;
  /** Largest frame the peer may send back on our connection. */
  readonly frameBytesMax: number;
  /** A frame the peer sent back on our connection; false closes the connection (undecodable). */
  readonly onFrame: (peer: NodeId, frame: Uint8Array) => boolean;
}

/** For a link dialled by address alone: what to do once the challenge names the peer. */
export interface Discovery {
  /** The peer at the address is `id`: true to go on as its link, false to close for good. */
  identify(id: NodeId): boolean;
  /** The handshake finished. */
  ready(id: NodeId): void;
  /** The connection closed before the handshake finished; the link is closed for good. */
  failed(): void;
}

export class PeerLink {
  private readonly queue: SendQueue;
  private socket: Socket | undefined;
  private ready = false;
  private blocked = false;
  private attempts = 0;
  private sent = 0;
  private writes = 0;
  private sentBytes = 0;
  private flushScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** What the link last reported: undefined before its first dial ends. */
  private reported: boolean | undefined;
  /** Undefined only while a link dialled by address waits for the peer's challenge. */
  private id: NodeId | undefined;

  constructor(
    private readonly settings: LinkSettings,
    peerId: NodeId | undefined,
    private address: PeerAddress,
    private discovery?: Discovery,
  ) {
    assert(
      (peerId === undefined) === (discovery !== undefined),
      'a link knows its peer or discovers it',
    );
    this.id = peerId;
    this.queue = new SendQueue(settings.limits);
    this.dial();
  }

  get peerId(): NodeId {
    assert(this.id !== undefined, 'peer id asked before the challenge named it');
    return this.id;
  }

  /** The peer's id, or the address while a discovering link does not know it yet. */
  private get name(): string {
    return this.id === undefined ? `${this.address.host}:${this.address.port}` : `${this.id}`;
  }

  /** Queues an encoded frame; returns whether an older frame was dropped for it. */
  enqueue(frame: Uint8Array): boolean {
    const dropped = this.queue.push(frame);
    // Flush once per event-loop turn, after this turn's I/O callbacks and promise jobs: a
    // whole batch of sends (one Ready's messages, plus any sent while it was carried out)
    // goes out in one socket write, and the answers to clients that the same turn wrote
    // leave before the peer traffic (a commit notice need not overtake the reply).
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return dropped;
  }

  /** Writes what is queued now, instead of at the end of this event-loop turn. */
  flushNow(): void {
    this.flush();
  }

  /**
   * The peer just dialled this node and proved who it is, so it is up: a redial waiting out
   * its backoff goes now. Without it, a node that restarts is not heard by a peer that backed
   * off to `reconnectMaxMs` while it was down (a leader's heartbeats wait that long).
   */
  peerIsBack(): void {
    if (this.closed || this.socket !== undefined) return;
    clearTimeout(this.timer);
    this.attempts = 0;
    this.dial();
  }

  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.socket?.destroy(); // the close handler redials the new address
  }

  stats(): PeerStats {
    return {
      connected: this.ready,
      queuedMessages: this.queue.length,
      queuedBytes: this.queue.bytes,
      sentMessages: this.sent,
      sentBytes: this.sentBytes,
      writes: this.writes,
      droppedMessages: this.queue.dropped,
    };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.queue.clear();
  }

  private dial(): void {
    const { host, port } = this.address;
    const tls = this.settings.tls;
    // Peer identity comes from the cluster CA plus the HMAC handshake, not from host names,
    // which for cluster members are usually bare IPs.
    const socket = tls
      ? tlsConnect({
          host,
          port,
          key: tls.key,
          cert: tls.cert,
          ca: tls.ca,
          checkServerIdentity: () => undefined,
        })
      : netConnect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    const clientNonce = newNonce();
    let challenge: Challenge | undefined;
    this.timer = setTimeout(
      () => this.drop(socket, 'handshake timed out'),
      this.settings.handshakeTimeoutMs,
    );
    let decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
    socket.on('data', (chunk: Buffer) => {
      const result = decoder.push(chunk);
      if (!result.ok) return this.drop(socket, result.error);
      for (const [i, frame] of result.frames.entries()) {
        if (this.ready && this.socket === socket) {
          if (!this.settings.onFrame(this.peerId, frame)) return this.drop(socket, 'undecodable');
          continue;
        }
        if (challenge === undefined) {
          challenge = decodeChallenge(frame);
          if (challenge === undefined) return this.drop(socket, 'malformed challenge');
          if (!this.identify(socket, challenge.serverId)) return;
          const proof = clientProof(
            this.settings.secret,
            challenge,
            this.settings.selfId,
            clientNonce,
          );
          const hello = {
            clientId: this.settings.selfId,
            targetId: this.peerId,
            clientNonce,
            proof,
          };
          socket.write(encodeFrame(encodeHello(hello)));
          continue;
        }
        const got = decodeWelcome(frame);
        const hello = {
          clientId: this.settings.selfId,
          targetId: this.peerId,
          clientNonce,
          proof: new Uint8Array(0),
        };
        if (
          got === undefined ||
          !proofsEqual(got, serverProof(this.settings.secret, challenge, hello))
        ) {
          return this.drop(socket, 'peer failed to prove the cluster secret');
        }
        // Nothing may follow the welcome until we have spoken: a reply answers a message.
        if (i + 1 < result.frames.length || !decoder.idle()) {
          return this.drop(socket, 'data before the handshake finished');
        }
        decoder = new FrameDecoder(this.settings.frameBytesMax);
        this.onReady();
      }
    });
    socket.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
    socket.on('error', (e) => this.settings.log('info', `link to ${this.name}: ${e.message}`));
    socket.on('close', () => this.onClose(socket));
  }

  /** Whether the peer named by its challenge is the one we want (a discovering link asks). */
  private identify(socket: Socket, serverId: NodeId): boolean {
    if (this.id !== undefined) {
      if (serverId === this.id) return true;
      this.drop(socket, `address belongs to node ${serverId}`);
      return false;
    }
    const d = this.discovery;
    assert(d !== undefined, 'a link without an id discovers it');
    if (!d.identify(serverId)) {
      this.discovery = undefined;
      this.close();
      return false;
    }
    this.id = serverId;
    return true;
  }

  private onReady(): void {
    clearTimeout(this.timer);
    this.ready = true;
    this.attempts = 0;
    this.settings.log('info', `connected to node ${this.peerId}`);
    const d = this.discovery;
    this.discovery = undefined;
    d?.ready(this.peerId);
    this.report(true);
    this.flush();
  }

  private report(up: boolean): void {
    if (this.reported === up || this.id === undefined) return;
    this.reported = up;
    this.settings.onLink(this.peerId, up);
  }

  private drop(socket: Socket, why: string): void {
    this.settings.log('warn', `closing link to node ${this.name}: ${why}`);
    socket.destroy();
  }

  /** Writes queued frames in batches of up to writeBytesMax until the socket pushes back. */
  private flush(): void {
    const socket = this.socket;
    while (this.ready && !this.blocked && socket !== undefined && this.queue.length > 0) {
      const frames = this.queue.take(this.settings.writeBytesMax);
      const bytes = frames.length === 1 ? (frames[0] as Uint8Array) : Buffer.concat(frames);
      this.sent += frames.length;
      this.writes += 1;
      this.sentBytes += bytes.length;
      this.settings.onBytesSent?.(this.peerId, bytes.length);
      this.blocked = !socket.write(bytes);
    }
  }

  private onClose(socket: Socket): void {
    if (this.socket !== socket) return;
    clearTimeout(this.timer);
    this.socket = undefined;
    this.ready = false;
    this.blocked = false;
    if (this.discovery !== undefined) {
      // A seed that did not finish the handshake: the caller looks again, by address.
      const d = this.discovery;
      this.discovery = undefined;
      this.close();
      d.failed();
      return;
    }
    if (this.closed) return;
    this.report(false);
    this.timer = setTimeout(() => this.dial(), this.backoffMs());
  }

  /** Capped exponential backoff with "equal jitter": uniform in [d/2, d]. */
  private backoffMs(): number {
    const { reconnectBaseMs, reconnectMaxMs } = this.settings;
    const d = Math.min(reconnectMaxMs, reconnectBaseMs * 2 ** Math.min(this.attempts, 30));
    this.attempts += 1;
    return d / 2 + Math.random() * (d / 2);
  }
}
