import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type { Codec } from '../runtime/transport/codec.ts';
import { SEAL_OVERHEAD_BYTES } from '../runtime/transport/datagram-seal.ts';
import { type DatagramCrypto, UdpTransport } from '../runtime/transport/udp-transport.ts';
import { type DecodeFailure, decodeFailures, decodeTotem, encodeTotem } from '../totem/codec.ts';
import { TOTEM_DEFAULTS, type TotemConfig } from '../totem/config.ts';
import { TotemNode } from '../totem/node.ts';
import {
  applyTotemPersist,
  type DeliveryMode,
  EMPTY_TOTEM_DURABLE,
  ringKey,
  type TotemDeliver,
  type TotemDurable,
  type TotemEvent,
  type TotemMsg,
  type TotemPersist,
  type TotemReply,
  type TotemTypes,
} from '../totem/types.ts';
import { NodeHost } from './node-host.ts';

/**
 * `quorate node --protocol totem`: the Totem core on the node host, over the sealed UDP
 * transport (AES-256-GCM under the cluster secret; unsealed only when `datagramCrypto` is
 * `insecure-none`, named as such, for benchmarks and trusted networks), with its ring seq and boot number kept
 * in <data>/totem.json (written to a temporary file, fdatasynced, renamed) before any
 * message that depends on them leaves, as the core requires. HTTP API:
 *   GET  /ring                      state, ring id, members, aru, queue depth
 *   POST /publish?mode=agreed|safe  body = the message; 200 {ring, seq, origin} once
 *                                   delivered here, 503 backpressure, 413 too large
 *   POST /publish/batch?mode=...    body = messages, each a u32 length then its bytes;
 *                                   200 {delivered, backpressure} once all are answered
 *   POST /publish/stream?mode=...   body = a stream of such messages, each published as soon as
 *                                   it has arrived (one request for many, no per-message
 *                                   round trip); 200 {published, delivered, backpressure}
 *                                   once the body has ended and all are answered
 *   GET  /deliveries?from=N         delivered messages and configuration changes from
 *                                   position N, as JSON; `&stream=1` as server-sent events
 *   GET  /metrics                   Prometheus text
 */
export interface TotemNodeConfig {
  readonly id: NodeId;
  /** Every member's UDP peer address (self included). */
  readonly peers: readonly { readonly id: NodeId; readonly host: string; readonly port: number }[];
  readonly clientHost: string;
  readonly clientPort: number;
  readonly dataDir: string;
  readonly secret: string | Uint8Array;
  readonly clusterName: string;
  readonly tokenBaseMs?: number;
  /** Delivered items kept for /deliveries (older positions are gone). */
  readonly deliveriesMax?: number;
  /** How long a publish waits for its local delivery. */
  readonly publishTimeoutMs?: number;
  /** Datagram protection; `insecure-none` (benchmarks, trusted networks) must be named. */
  readonly datagramCrypto?: DatagramCrypto;
}

/** One delivered item, numbered from 1 in this node's delivery order. */
interface Position {
  readonly pos: number;
  readonly item: TotemDeliver;
}

/** The codec the transport uses: malformed datagrams are counted by reason, then refused. */
export function countingTotemCodec(counts: Map<DecodeFailure, number>): Codec<TotemMsg> {
  return {
    encode: encodeTotem,
    decode(bytes) {
      const d = decodeTotem(bytes);
      if (d.ok) return d.msg;
      counts.set(d.reason, (counts.get(d.reason) ?? 0) + 1);
      throw new Error(`malformed Totem datagram: ${d.reason}`);
    },
  };
}

async function readDurable(file: string): Promise<TotemDurable> {
  try {
    const raw = JSON.parse(await readFile(file, 'utf8')) as Partial<TotemDurable>;
    const boot = Number(raw.boot);
    const ringSeq = Number(raw.ringSeq);
    if (!Number.isSafeInteger(boot) || !Number.isSafeInteger(ringSeq)) {
      throw new Error(`${file} is not a Totem state file`);
    }
    return { boot, ringSeq };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_TOTEM_DURABLE;
    throw err;
  }
}

async function writeDurable(file: string, d: TotemDurable): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(d));
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function itemJson(p: Position): unknown {
  const d = p.item;
  if (d.type === 'config') return { pos: p.pos, ...d, ring: ringKey(d.ring) };
  return {
    pos: p.pos,
    type: 'message',
    ring: ringKey(d.ring),
    seq: d.seq,
    origin: d.origin,
    mode: d.mode,
    in: d.in,
    data: Buffer.from(d.data).toString('utf8'),
  };
}

export class TotemNodeServer {
  readonly core: TotemNode;
  readonly host: NodeHost<TotemTypes>;
  readonly transport: UdpTransport<TotemMsg>;
  private readonly http: Server;
  private readonly stateFile: string;
  private durable: TotemDurable;
  private readonly log: Position[] = [];
  private nextPos = 1;
  private readonly deliveriesMax: number;
  private readonly subscribers = new Set<ServerResponse>();
  private readonly waiting = new Map<ClientId, (r: TotemReply) => void>();
  private nextClient = 1;
  /** Messages delivered, and an FNV-1a hash over their origins and bytes in delivery order. */
  private deliveredMessages = 0;
  private deliveryHash = 0x811c9dc5;
  private readonly decodeDrops = new Map<DecodeFailure, number>();
  private readonly counters = {
    rotations: 0,
    tokenVisits: 0,
    retransmits: 0,
    sent: 0,
    deliveredAgreed: 0,
    deliveredSafe: 0,
    configurations: 0,
    membershipRounds: 0,
    coreDrops: 0,
  };

  private constructor(
    private readonly config: TotemNodeConfig,
    durable: TotemDurable,
  ) {
    this.durable = durable;
    this.stateFile = join(config.dataDir, 'totem.json');
    this.deliveriesMax = config.deliveriesMax ?? 10_000;
    const members = config.peers.map((p) => p.id);
    const totem: TotemConfig = {
      ...TOTEM_DEFAULTS,
      ...(config.tokenBaseMs === undefined ? {} : { tokenBaseMs: config.tokenBaseMs }),
      id: config.id,
      members,
    };
    this.transport = new UdpTransport<TotemMsg>({
      id: config.id,
      clusterName: config.clusterName,
      secret: config.secret,
      codec: countingTotemCodec(this.decodeDrops),
      host: config.peers.find((p) => p.id === config.id)!.host,
      port: config.peers.find((p) => p.id === config.id)!.port,
      packetBytesMax: totem.mtuBytes + SEAL_OVERHEAD_BYTES,
      crypto: config.datagramCrypto ?? 'aes-256-gcm',
      connectPeers: true,
      // The core's messages are readonly values; a broadcast is one object to every member.
      immutableMessages: true,
    });
    for (const p of config.peers) {
      if (p.id !== config.id) this.transport.addPeer(p.id, { host: p.host, port: p.port });
    }
    this.core = new TotemNode(totem, durable, performance.now());
    this.host = new NodeHost<TotemTypes>({
      core: this.core,
      transport: this.transport,
      tickOnStart: false,
      service: {
        persist: (items) => this.persist(items),
        event: (e) => this.onEvent(e),
        replies: (replies) => {
          for (const { client, reply } of replies) {
            const w = this.waiting.get(client);
            this.waiting.delete(client);
            w?.(reply);
          }
        },
        delivered: (rd) => {
          for (const d of rd.deliver) this.onDeliver(d);
        },
      },
    });
    this.http = createServer((req, res) => this.route(req, res));
  }

  static async start(config: TotemNodeConfig): Promise<TotemNodeServer> {
    await mkdir(config.dataDir, { recursive: true });
    const durable = await readDurable(join(config.dataDir, 'totem.json'));
    const server = new TotemNodeServer(config, durable);
    await server.host.start();
    await new Promise<void>((resolve, reject) => {
      server.http.once('error', reject);
      server.http.listen(config.clientPort, config.clientHost, () => resolve());
    });
    return server;
  }

  get clientUrl(): string {
    const a = this.http.address();
    const port = typeof a === 'object' && a !== null ? a.port : this.config.clientPort;
    return `http://${this.config.clientHost}:${port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.subscribers) s.end();
    await this.host.stop();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await closed;
  }

  private async persist(items: readonly TotemPersist[]): Promise<void> {
    let d = this.durable;
    for (const p of items) d = applyTotemPersist(d, p);
    await writeDurable(this.stateFile, d);
    this.durable = d;
  }

  private onEvent(e: TotemEvent): void {
    const c = this.counters;
    switch (e.type) {
      case 'token':
        c.tokenVisits++;
        // A rotation is counted where it starts: at the ring's representative.
        if (e.ring.rep === this.config.id) c.rotations++;
        return;
      case 'visit':
        c.retransmits += e.resent;
        c.sent += e.sent;
        return;
      case 'state':
        if (e.state === 'gather') c.membershipRounds++;
        return;
      case 'dropped':
        c.coreDrops++;
        return;
      default:
        return;
    }
  }

  private onDeliver(d: TotemDeliver): void {
    if (d.type === 'config') this.counters.configurations++;
    else {
      if (d.mode === 'safe') this.counters.deliveredSafe++;
      else this.counters.deliveredAgreed++;
      this.deliveredMessages++;
      let h = this.deliveryHash;
      for (const v of [d.origin.node, d.origin.boot, d.origin.n]) h = Math.imul(h ^ v, 0x01000193);
      for (const b of d.data) h = Math.imul(h ^ b, 0x01000193);
      this.deliveryHash = h >>> 0;
    }
    const p: Position = { pos: this.nextPos++, item: d };
    this.log.push(p);
    // Trimmed in chunks: shifting a 10,000-item array per delivery cost O(n) each, and at
    // 10,000 deliveries a second that was the node's hottest line.
    if (this.log.length >= 2 * this.deliveriesMax)
      this.log.splice(0, this.log.length - this.deliveriesMax);
    if (this.subscribers.size === 0) return;
    const line = `data: ${JSON.stringify(itemJson(p))}\n\n`;
    for (const s of this.subscribers) s.write(line);
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/ring') {
      const s = this.core.status();
      json(res, 200, {
        id: this.config.id,
        ...s,
        ring: ringKey(s.ring),
        deliveredMessages: this.deliveredMessages,
        deliveryHash: this.deliveryHash.toString(16),
      });
    } else if (req.method === 'POST' && url.pathname === '/publish/batch') {
      this.publishBatch(req, res, url);
    } else if (req.method === 'POST' && url.pathname === '/publish/stream') {
      this.publishStream(req, res, url);
    } else if (req.method === 'POST' && url.pathname === '/publish') {
      this.publish(req, res, url);
    } else if (req.method === 'GET' && url.pathname === '/deliveries') {
      this.deliveries(req, res, url);
    } else if (req.method === 'GET' && url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(this.metrics());
    } else {
      json(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    }
  }

  private publish(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const mode = url.searchParams.get('mode') ?? 'agreed';
    if (mode !== 'agreed' && mode !== 'safe') {
      json(res, 400, { error: `mode must be agreed or safe, got '${mode}'` });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const max = TOTEM_DEFAULTS.messageBytesMax;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    req.on('end', () => {
      if (size > max) {
        json(res, 413, { error: `message of ${size} bytes is above ${max}` });
        return;
      }
      const data = new Uint8Array(Buffer.concat(chunks));
      const client = this.nextClient++;
      const timer = setTimeout(() => {
        this.waiting.delete(client);
        json(res, 504, { error: 'not delivered here in time (no ring, or a ring re-forming)' });
      }, this.config.publishTimeoutMs ?? 10_000);
      this.waiting.set(client, (r) => {
        clearTimeout(timer);
        this.answerPublish(res, r);
      });
      this.host.input((now) =>
        this.core.request(now, client, {
          type: 'publish',
          mode: mode as DeliveryMode,
          data,
          ref: client,
        }),
      );
    });
  }

  /** Reads a request body up to `max` bytes; undefined (answered 413) when larger. */
  private body(
    req: IncomingMessage,
    res: ServerResponse,
    max: number,
  ): Promise<Uint8Array | undefined> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= max) chunks.push(c);
      });
      req.on('end', () => {
        if (size <= max) resolve(new Uint8Array(Buffer.concat(chunks)));
        else {
          json(res, 413, { error: `body of ${size} bytes is above ${max}` });
          resolve(undefined);
        }
      });
    });
  }

  private async publishBatch(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const mode = url.searchParams.get('mode') ?? 'agreed';
    if (mode !== 'agreed' && mode !== 'safe') {
      json(res, 400, { error: `mode must be agreed or safe, got '${mode}'` });
      return;
    }
    const body = await this.body(req, res, 16 << 20);
    if (body === undefined) return;
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const messages: Uint8Array[] = [];
    for (let at = 0; at < body.length; ) {
      const n = at + 4 <= body.length ? view.getUint32(at) : -1;
      if (n < 0 || at + 4 + n > body.length || messages.length >= 10_000) {
        json(res, 400, {
          error: `malformed batch at byte ${at} (u32 length, then that many bytes; at most 10,000)`,
        });
        return;
      }
      messages.push(body.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
    let delivered = 0;
    let backpressure = 0;
    let left = messages.length;
    const done = () => json(res, 200, { delivered, backpressure });
    if (left === 0) {
      done();
      return;
    }
    const timer = setTimeout(() => {
      for (const c of clients) this.waiting.delete(c);
      json(res, 504, { error: 'not all delivered here in time', delivered, backpressure });
    }, this.config.publishTimeoutMs ?? 10_000);
    const clients: ClientId[] = [];
    this.host.input((now) => {
      for (const data of messages) {
        const client = this.nextClient++;
        clients.push(client);
        this.waiting.set(client, (r) => {
          if (r.type === 'published') delivered++;
          else backpressure++;
          if (--left === 0) {
            clearTimeout(timer);
            done();
          }
        });
        this.core.request(now, client, { type: 'publish', mode, data, ref: client });
      }
    });
  }

  private publishStream(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const mode = url.searchParams.get('mode') ?? 'agreed';
    if (mode !== 'agreed' && mode !== 'safe') {
      json(res, 400, { error: `mode must be agreed or safe, got '${mode}'` });
      return;
    }
    const max = TOTEM_DEFAULTS.messageBytesMax;
    let pending: Buffer = Buffer.alloc(0);
    let published = 0;
    let delivered = 0;
    let backpressure = 0;
    let ended = false;
    let failed = false;
    const clients = new Set<ClientId>();
    const finish = () => {
      if (ended && clients.size === 0 && !res.headersSent) {
        json(res, 200, { published, delivered, backpressure });
      }
    };
    const answer = (client: ClientId) => (r: TotemReply) => {
      clients.delete(client);
      if (r.type === 'published') delivered++;
      else backpressure++;
      finish();
    };
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      const buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const messages: Uint8Array[] = [];
      let at = 0;
      while (at + 4 <= buf.length) {
        const n = buf.readUInt32BE(at);
        if (n > max) {
          failed = true;
          json(res, 413, { error: `message of ${n} bytes is above ${max}`, published });
          req.destroy();
          return;
        }
        if (at + 4 + n > buf.length) break;
        // A copy: the core keeps the bytes, and a view would pin the whole chunk.
        messages.push(new Uint8Array(buf.subarray(at + 4, at + 4 + n)));
        at += 4 + n;
      }
      pending = buf.subarray(at);
      if (messages.length === 0) return;
      published += messages.length;
      this.host.input((now) => {
        for (const data of messages) {
          const client = this.nextClient++;
          clients.add(client);
          this.waiting.set(client, answer(client));
          this.core.request(now, client, { type: 'publish', mode, data, ref: client });
        }
      });
    });
    req.on('end', () => {
      ended = true;
      if (pending.length > 0 && !failed) {
        failed = true;
        json(res, 400, { error: `the stream ended inside a message (${pending.length} bytes)` });
        return;
      }
      const timer = setTimeout(() => {
        for (const c of clients) this.waiting.delete(c);
        if (!res.headersSent) {
          json(res, 504, { error: 'not all delivered here in time', published, delivered });
        }
      }, this.config.publishTimeoutMs ?? 10_000);
      res.once('finish', () => clearTimeout(timer));
      finish();
    });
    req.on('close', () => {
      if (!ended) for (const c of clients) this.waiting.delete(c);
    });
  }

  private answerPublish(res: ServerResponse, r: TotemReply): void {
    switch (r.type) {
      case 'published':
        json(res, 200, { ring: ringKey(r.ring), seq: r.seq, origin: r.origin });
        return;
      case 'backpressure':
        json(res, 503, { error: 'backpressure', depth: r.depth, bytes: r.bytes });
        return;
      case 'refused':
        json(res, r.reason === 'too-large' ? 413 : 400, { error: r.detail });
        return;
      case 'status':
        json(res, 500, { error: 'unexpected answer' });
        return;
    }
  }

  private deliveries(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const from = Number(url.searchParams.get('from') ?? '1');
    if (!Number.isSafeInteger(from) || from < 1) {
      json(res, 400, {
        error: `from must be a position >= 1, got '${url.searchParams.get('from')}'`,
      });
      return;
    }
    const kept = this.log.slice(-this.deliveriesMax);
    const first = kept[0]?.pos ?? this.nextPos;
    if (from < first) {
      json(res, 410, { error: `positions before ${first} are no longer kept`, first });
      return;
    }
    const items = kept.slice(from - first).map(itemJson);
    if (url.searchParams.get('stream') !== '1') {
      json(res, 200, { next: this.nextPos, items });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    // Headers go now: a subscriber from the tip would otherwise see nothing until an event.
    res.flushHeaders();
    for (const i of items) res.write(`data: ${JSON.stringify(i)}\n\n`);
    this.subscribers.add(res);
    req.on('close', () => this.subscribers.delete(res));
  }

  private metrics(): string {
    const c = this.counters;
    const s = this.core.status();
    const lines = [
      '# TYPE quorate_totem_token_rotations_total counter',
      `quorate_totem_token_rotations_total ${c.rotations}`,
      '# TYPE quorate_totem_token_visits_total counter',
      `quorate_totem_token_visits_total ${c.tokenVisits}`,
      '# TYPE quorate_totem_retransmits_total counter',
      `quorate_totem_retransmits_total ${c.retransmits}`,
      '# TYPE quorate_totem_datagrams_sent_total counter',
      `quorate_totem_datagrams_sent_total ${c.sent}`,
      '# TYPE quorate_totem_deliveries_total counter',
      `quorate_totem_deliveries_total{mode="agreed"} ${c.deliveredAgreed}`,
      `quorate_totem_deliveries_total{mode="safe"} ${c.deliveredSafe}`,
      '# TYPE quorate_totem_configurations_total counter',
      `quorate_totem_configurations_total ${c.configurations}`,
      '# TYPE quorate_totem_membership_rounds_total counter',
      `quorate_totem_membership_rounds_total ${c.membershipRounds}`,
      '# TYPE quorate_totem_dropped_total counter',
    ];
    for (const [reason, n] of this.core.drops) {
      lines.push(`quorate_totem_dropped_total{where="core",reason="${reason}"} ${n}`);
    }
    for (const reason of decodeFailures) {
      const n = this.decodeDrops.get(reason) ?? 0;
      lines.push(`quorate_totem_dropped_total{where="decode",reason="${reason}"} ${n}`);
    }
    for (const [reason, n] of Object.entries(this.transport.drops)) {
      lines.push(`quorate_totem_dropped_total{where="transport",reason="${reason}"} ${n}`);
    }
    lines.push(
      '# TYPE quorate_totem_members gauge',
      `quorate_totem_members ${s.members.length}`,
      '# TYPE quorate_totem_operational gauge',
      `quorate_totem_operational ${s.state === 'operational' ? 1 : 0}`,
    );
    return `${lines.join('\n')}\n`;
  }
}
