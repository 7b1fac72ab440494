import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  type Entry,
  MERKLE_DEFAULTS,
  MERKLE_MSG_TYPES,
  type MerkleConfig,
  type MerkleEvent,
  type MerkleMsg,
  MerkleNode,
  type MerkleReply,
  type MerkleRequest,
  type MerkleTypes,
  messageBytes,
} from '../gossip/antientropy/index.ts';
import type { Reply } from '../kernel/core.ts';
import type { NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import { filePacker } from '../runtime/msgpack.ts';
import type {
  MessageHandler,
  PeerAddress,
  PeerStats,
  SendResult,
  Transport,
} from '../runtime/transport/transport.ts';
import type { GossipAgent } from './gossip-agent.ts';
import { StoreLog, undefinedForNull } from './gossip-store-log.ts';
import { NodeHost } from './node-host.ts';

/**
 * The eventually consistent map served by a gossip agent: the pure Merkle-repaired replica
 * (src/gossip/antientropy/node.ts) on the node host. This file is I/O only: repair messages
 * ride the agent's authenticated TCP streams as service frames (MessagePack), peers come
 * from the gossip membership (every member ever seen is admitted as an author, the alive
 * ones are the live view the core repairs with and needs for tombstone collection), and
 * persist items go to the append-only log of gossip-store-log.ts, fdatasynced before the
 * host answers a write. Which peer to repair with, what differs, who wins, when a tombstone
 * may go: all the core's.
 */
export type StoreTunables = Partial<Omit<MerkleConfig, 'id' | 'members'>>;

export interface GossipStoreOptions {
  readonly agent: GossipAgent;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly core?: StoreTunables;
  /**
   * Test and bench only: allow `blockPeers`, which drops repair traffic to and from chosen
   * peers (a partition of the store while gossip membership still sees everyone alive).
   */
  readonly unsafeTestingFaults?: boolean;
}

export interface KindTraffic {
  messages: number;
  /** Bytes of the encoded message as it went on the wire (frame header excluded). */
  bytes: number;
  /** Bytes of the core's wire model (wire.ts), the unit the simulator reports. */
  modelBytes: number;
}

type MsgType = MerkleMsg['type'];
export type StoreTraffic = Record<MsgType, KindTraffic>;

function traffic(): StoreTraffic {
  const out = {} as StoreTraffic;
  for (const k of MERKLE_MSG_TYPES) out[k] = { messages: 0, bytes: 0, modelBytes: 0 };
  return out;
}

export interface StoreCounters {
  repairsStarted: number;
  inSync: number;
  collected: number;
  dropped: Record<string, number>;
  /** Frames that did not decode as a repair message (never reached the core). */
  undecodable: number;
  /** Repair messages dropped by an injected partition (`blockPeers`), both directions. */
  blockedByFault: number;
  writes: number;
  refused: number;
  delivered: number;
}

/** How often the host compares the gossip membership with what it last gave the core. */
const MEMBERSHIP_POLL_MS = 250;
const RATE_WINDOW_MS = 5_000;

/** The core's live view from the gossip membership: alive and suspect members, and us. */
export function liveFromMembers(
  self: NodeId,
  members: readonly { id: NodeId; status: string }[],
): NodeId[] {
  const live = new Set<NodeId>([self]);
  for (const m of members) if (m.status === 'alive' || m.status === 'suspect') live.add(m.id);
  return [...live].sort((a, b) => a - b);
}

/** The repair protocol's `Transport` over the agent's streams (the agent owns the sockets). */
class ServiceChannel implements Transport<MerkleMsg> {
  readonly id: NodeId;
  /** Peers whose repair traffic an injected partition drops (test and bench only). */
  readonly blocked = new Set<NodeId>();
  private handler: MessageHandler<MerkleMsg> = () => {};

  constructor(
    private readonly agent: GossipAgent,
    private readonly sent: StoreTraffic,
    private readonly received: StoreTraffic,
    private readonly counters: StoreCounters,
  ) {
    this.id = agent.id;
    agent.transport.onService((from, bytes) => this.receive(from, bytes));
  }

  private receive(from: NodeId, bytes: Uint8Array): void {
    if (this.blocked.has(from)) {
      this.counters.blockedByFault++;
      return;
    }
    let msg: MerkleMsg;
    try {
      msg = undefinedForNull(filePacker.unpack(bytes)) as MerkleMsg;
    } catch {
      this.counters.undecodable++;
      return;
    }
    const t = (msg as { type?: unknown }).type;
    if (typeof t === 'string' && t in this.received) {
      const c = this.received[t as MsgType];
      c.messages++;
      c.bytes += bytes.length;
    }
    this.handler(from, msg);
  }

  async start(): Promise<PeerAddress> {
    return this.agent.transport.boundAddress;
  }

  async stop(): Promise<void> {}

  addPeer(): void {}

  removePeer(): void {}

  send(to: NodeId, msg: MerkleMsg): SendResult {
    if (this.blocked.has(to)) {
      this.counters.blockedByFault++;
      return 'queued'; // lost on the way, as a partition would lose it
    }
    this.agent.learnAddress(to);
    const bytes = filePacker.pack(msg);
    const c = this.sent[msg.type];
    c.messages++;
    c.bytes += bytes.length;
    c.modelBytes += messageBytes(msg);
    return this.agent.transport.sendService(to, bytes);
  }

  flush(): void {
    this.agent.transport.flush();
  }

  onMessage(handler: MessageHandler<MerkleMsg>): void {
    this.handler = handler;
  }

  peerStats(): PeerStats | undefined {
    return undefined;
  }
}

export interface StoreEntryView {
  readonly key: string;
  readonly value: Uint8Array | undefined;
  readonly version: { readonly wall: number; readonly logical: number; readonly node: NodeId };
}

interface Waiter {
  readonly resolve: (r: MerkleReply) => void;
  readonly reject: (err: Error) => void;
}

export class GossipStore {
  private readonly pending = new Map<number, Waiter>();
  private readonly deliverListeners = new Set<(e: Entry) => void>();
  private nextClient = 1;
  private membersSeen = -1;
  private poll: NodeJS.Timeout | undefined;
  private stopped = false;
  private rateSample: { at: number; writes: number; bytes: number; delivered: number };
  private rates = { writesPerSecond: 0, repairBytesPerSecond: 0, deliveredPerSecond: 0 };

  private constructor(
    readonly agent: GossipAgent,
    readonly core: MerkleNode,
    readonly host: NodeHost<MerkleTypes>,
    readonly log: StoreLog,
    private readonly logger: Logger,
    /** Shared with the channel, which counts what it sends and receives. */
    readonly sent: StoreTraffic,
    readonly received: StoreTraffic,
    readonly counters: StoreCounters,
    private readonly channel: ServiceChannel,
    readonly unsafeTestingFaults: boolean,
  ) {
    this.rateSample = { at: Date.now(), writes: 0, bytes: 0, delivered: 0 };
  }

  static async open(o: GossipStoreOptions): Promise<GossipStore> {
    const dir = join(o.dataDir, 'store');
    const { log, durable, cut } = await StoreLog.open(dir);
    if (cut > 0) o.logger.warn({ bytes: cut }, 'store log: cut a torn or damaged tail');
    const config: MerkleConfig = {
      ...MERKLE_DEFAULTS,
      ...o.core,
      id: o.agent.id,
      members: [o.agent.id],
    };
    const core = new MerkleNode(config, Rng.fromSeed(randomInt(2 ** 47)), durable);
    const sent = traffic();
    const received = traffic();
    let store: GossipStore | undefined;
    const counters: StoreCounters = {
      repairsStarted: 0,
      inSync: 0,
      collected: 0,
      dropped: {},
      undecodable: 0,
      blockedByFault: 0,
      writes: 0,
      refused: 0,
      delivered: 0,
    };
    const channel = new ServiceChannel(o.agent, sent, received, counters);
    // The core's clock is the wall clock: versions are hybrid logical times shared, loosely,
    // across nodes, and a tombstone's age is wall time (node.ts).
    const host = new NodeHost<MerkleTypes>({
      core,
      transport: channel,
      clock: () => Date.now(),
      tickOnStart: true,
      logger: o.logger,
      service: {
        persist: (items) => log.append(items),
        event: (e) => store?.onEvent(e),
        replies: (rs) => store?.onReplies(rs),
        delivered: (rd) => store?.onDelivered(rd.deliver),
        failed: (err) => o.logger.fatal({ err }, 'store log could not be written'),
      },
    });
    const faults = o.unsafeTestingFaults === true;
    store = new GossipStore(
      o.agent,
      core,
      host,
      log,
      o.logger,
      sent,
      received,
      counters,
      channel,
      faults,
    );
    store.syncMembers();
    await host.start();
    store.poll = setInterval(() => {
      store?.syncMembers();
      store?.sampleRates();
    }, MEMBERSHIP_POLL_MS);
    o.logger.info(
      { entries: core.tree.size, records: log.recordCount },
      'anti-entropy store started',
    );
    return store;
  }

  /** Hands the core the gossip membership when it changed since the last look. */
  private syncMembers(): void {
    if (this.stopped || this.agent.membershipVersion === this.membersSeen) return;
    this.membersSeen = this.agent.membershipVersion;
    const members = this.agent.members();
    const live = liveFromMembers(this.agent.id, members);
    this.host.input(() => {
      this.core.admit(members.map((m) => m.id));
      this.core.setLive(live);
    });
  }

  private sampleRates(): void {
    const now = Date.now();
    const dt = now - this.rateSample.at;
    if (dt < RATE_WINDOW_MS) return;
    const bytes = this.repairBytes();
    const per = (d: number) => Math.round((d * 10_000) / dt) / 10;
    this.rates = {
      writesPerSecond: per(this.counters.writes - this.rateSample.writes),
      repairBytesPerSecond: per(bytes - this.rateSample.bytes),
      deliveredPerSecond: per(this.counters.delivered - this.rateSample.delivered),
    };
    this.rateSample = {
      at: now,
      writes: this.counters.writes,
      bytes,
      delivered: this.counters.delivered,
    };
  }

  /** Test and bench only: drop repair traffic to and from `peers` (empty: heal). */
  blockPeers(peers: readonly NodeId[]): void {
    if (!this.unsafeTestingFaults) throw new Error('store faults are not enabled');
    this.channel.blocked.clear();
    for (const p of peers) this.channel.blocked.add(p);
    this.logger.warn({ blocked: peers }, 'store partition injected (testing fault)');
  }

  /** Repair bytes sent, as encoded on the wire. */
  repairBytesSent(): number {
    let n = 0;
    for (const k of MERKLE_MSG_TYPES) n += this.sent[k].bytes;
    return n;
  }

  /** Repair bytes sent in the core's compact wire model (wire.ts), as the simulator counts. */
  repairModelBytesSent(): number {
    let n = 0;
    for (const k of MERKLE_MSG_TYPES) n += this.sent[k].modelBytes;
    return n;
  }

  /** Bytes of keys and values held (UTF-8 keys, tombstones as their keys). */
  dataBytes(): number {
    let n = 0;
    for (const e of this.core.tree.values()) n += Buffer.byteLength(e.key) + (e.value?.length ?? 0);
    return n;
  }

  /** Repair bytes sent and received, as encoded on the wire. */
  repairBytes(): number {
    let n = 0;
    for (const k of MERKLE_MSG_TYPES) n += this.sent[k].bytes + this.received[k].bytes;
    return n;
  }

  get currentRates(): Readonly<typeof this.rates> {
    return this.rates;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  request(req: MerkleRequest): Promise<MerkleReply> {
    if (this.stopped || !this.host.accepting) return Promise.reject(new Error('store stopped'));
    const client = this.nextClient++;
    return new Promise((resolve, reject) => {
      this.pending.set(client, { resolve, reject });
      this.host.input((now) => this.core.request(now, client, req));
    });
  }

  /** Live entries (tombstones left out) whose key starts with `prefix`, in key order. */
  list(prefix: string, after: string | undefined, limit: number): StoreEntryView[] {
    const found: StoreEntryView[] = [];
    for (const e of this.core.tree.values()) {
      if (e.value === undefined || !e.key.startsWith(prefix)) continue;
      if (after !== undefined && e.key <= after) continue;
      found.push(e);
    }
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return found.slice(0, limit);
  }

  /** Told every entry this replica stores from now on (local writes and repairs). */
  listen(listener: (e: Entry) => void, listenersMax: number): (() => void) | undefined {
    if (this.deliverListeners.size >= listenersMax) return undefined;
    this.deliverListeners.add(listener);
    return () => this.deliverListeners.delete(listener);
  }

  tombstones(): number {
    let n = 0;
    for (const e of this.core.tree.values()) if (e.value === undefined) n++;
    return n;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.poll);
    await this.host.stop();
    await this.log.close();
    for (const w of this.pending.values()) w.reject(new Error('store stopped'));
    this.pending.clear();
  }

  private onEvent(e: MerkleEvent): void {
    switch (e.type) {
      case 'repair-started':
        this.counters.repairsStarted++;
        return;
      case 'in-sync':
        this.counters.inSync++;
        return;
      case 'collected':
        this.counters.collected++;
        this.logger.debug({ key: e.key }, 'tombstone collected');
        return;
      case 'dropped':
        this.counters.dropped[e.reason] = (this.counters.dropped[e.reason] ?? 0) + 1;
        return;
      default:
        e satisfies never;
    }
  }

  private onReplies(rs: readonly Reply<MerkleReply>[]): void {
    for (const r of rs) {
      const w = this.pending.get(r.client);
      if (w === undefined) continue;
      this.pending.delete(r.client);
      if (r.reply.type === 'ok') this.counters.writes++;
      if (r.reply.type === 'refused') this.counters.refused++;
      w.resolve(r.reply);
    }
  }

  private onDelivered(entries: readonly Entry[]): void {
    this.counters.delivered += entries.length;
    for (const e of entries) for (const l of this.deliverListeners) l(e);
  }
}
