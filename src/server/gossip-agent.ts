import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  GOSSIP_DEFAULTS,
  type GossipConfig,
  type GossipEvent,
  GossipNode,
  type GossipReply,
  type GossipRequest,
  type GossipTypes,
  type MemberStatus,
} from '../gossip/index.ts';
import type { Ready, Reply } from '../kernel/core.ts';
import { NODE_ID_MAX, type NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { PeerAddress } from '../runtime/transport/transport.ts';
import { DeliveryFeed } from './gossip-feed.ts';
import { GossipStateStore } from './gossip-state.ts';
import { GossipTransport } from './gossip-transport.ts';
import { NodeHost } from './node-host.ts';
import { parsePeerAddress } from './raft-members.ts';

/**
 * The gossip agent: the pure gossip core (src/gossip) on the protocol-neutral node host,
 * over UDP datagrams and TCP streams on one port, with its hard state in a data directory.
 * It keeps the address book the core does not: each member's tags carry an address card
 * `{"a":"host:port","t":{user tags}}`, read when the core first sends to a member, so an
 * address learned by gossip needs no protocol of its own. Everything that decides (probes,
 * suspicion, refutation, retransmission, repair) is the core's.
 */
export type GossipTunables = Omit<GossipConfig, 'id' | 'seeds' | 'tags' | 'unsafeTestingFaults'>;

export interface GossipAgentOptions {
  readonly dataDir: string;
  /** Undefined: the id recorded in the data directory, or a random one for a new directory. */
  readonly id?: NodeId;
  readonly clusterName: string;
  readonly secret: string;
  /** Where to listen (port 0: ephemeral, the same number for UDP and TCP). */
  readonly bind: PeerAddress;
  /** The host others reach us at; default the bind host. */
  readonly advertiseHost?: string;
  readonly seeds: readonly PeerAddress[];
  readonly tags: Readonly<Record<string, string>>;
  readonly core?: Partial<GossipTunables>;
  readonly logger: Logger;
  /** How long to look for a seed that answers before giving up; default 60 s. */
  readonly seedWaitMs?: number;
  /** Received events kept for API readers; default 4,096. */
  readonly feedKeptMax?: number;
  readonly feedListenersMax?: number;
}

export interface MemberView {
  readonly id: NodeId;
  readonly address: string | undefined;
  readonly status: MemberStatus;
  readonly incarnation: number;
  readonly tags: Readonly<Record<string, string>>;
}

/** The parsed address card of a member's core tags. */
export interface AddressCard {
  readonly address: string;
  readonly tags: Readonly<Record<string, string>>;
}

export function encodeCard(address: string, tags: Readonly<Record<string, string>>): string {
  return JSON.stringify({ a: address, t: tags });
}

export function decodeCard(text: string): AddressCard | undefined {
  try {
    const raw = JSON.parse(text) as { a?: unknown; t?: unknown };
    if (typeof raw.a !== 'string' || parsePeerAddress(raw.a) === undefined) return undefined;
    const tags: Record<string, string> = {};
    if (typeof raw.t === 'object' && raw.t !== null) {
      for (const [k, v] of Object.entries(raw.t)) if (typeof v === 'string') tags[k] = v;
    }
    return { address: raw.a, tags };
  } catch {
    return undefined;
  }
}

/** Counters of what the core reported through events (the core's own stats hold the rest). */
export interface AgentCounters {
  verdicts: number;
  pushPulls: Record<string, number>;
  unaddressable: number;
}

/**
 * One connection attempt to a seed (its id is read from the handshake); a loaded seed (50 agents joining at once on two busy cores)
 * took over a second to answer, and a join that gave up left its agent alone for good.
 */
const LOOKUP_TIMEOUT_MS = 3_000;
/** How long POST /v1/join keeps looking for a seed that answers. */
const JOIN_WAIT_MS = 30_000;
const SEED_RETRY_MS = 500;

export class GossipAgent {
  readonly feed: DeliveryFeed;
  readonly counters: AgentCounters = { verdicts: 0, pushPulls: {}, unaddressable: 0 };
  private readonly pending = new Map<number, (r: GossipReply) => void>();
  private readonly cards = new Map<NodeId, string>();
  private readonly memberListeners = new Set<() => void>();
  /** Counts membership changes we saw: readers wait for it to move past what they saw. */
  private membershipVersionValue = 0;
  private nextClient = 1;
  private stopped = false;

  private constructor(
    readonly core: GossipNode,
    readonly host: NodeHost<GossipTypes>,
    readonly transport: GossipTransport,
    readonly address: string,
    private readonly logger: Logger,
    feed: DeliveryFeed,
    private readonly leaveGraceMs: number,
  ) {
    this.feed = feed;
  }

  /** Opens the data directory, binds, finds a seed, and starts gossiping. */
  static async start(o: GossipAgentOptions): Promise<GossipAgent> {
    const { store } = await GossipStateStore.open(o.dataDir, o.id, o.clusterName, () =>
      randomInt(1, NODE_ID_MAX),
    );
    const transport = new GossipTransport({
      id: store.id,
      clusterName: o.clusterName,
      secret: o.secret,
      host: o.bind.host,
      port: o.bind.port,
      packetBytesMax: o.core?.packetBytesMax ?? GOSSIP_DEFAULTS.packetBytesMax,
      log: (level, message) => o.logger[level]({ component: 'gossip-stream' }, message),
    });
    const bound = await transport.start();
    const address = `${o.advertiseHost ?? bound.host}:${bound.port}`;
    let seeds: NodeId[];
    try {
      seeds = await findSeeds(o.seeds, address, store.id, transport, o.seedWaitMs ?? 60_000);
    } catch (err) {
      await transport.stop();
      throw err;
    }
    const clock = () => performance.now();
    const config: GossipConfig = {
      ...GOSSIP_DEFAULTS,
      ...o.core,
      id: store.id,
      seeds,
      tags: encodeCard(address, o.tags),
    };
    const core = new GossipNode(config, Rng.fromSeed(randomInt(2 ** 47)), store.durable, clock());
    const feed = new DeliveryFeed(o.feedKeptMax ?? 4_096, o.feedListenersMax ?? 256);
    let agent: GossipAgent | undefined;
    const host = new NodeHost<GossipTypes>({
      core,
      transport,
      clock,
      tickOnStart: true,
      logger: o.logger,
      service: {
        persist: (items) => store.persist(items),
        send: (to, msg) => agent?.send(to, msg),
        event: (e) => agent?.onEvent(e),
        replies: (rs) => agent?.onReplies(rs),
        delivered: (rd) => agent?.onDelivered(rd),
        failed: (err) => o.logger.fatal({ err }, 'gossip state could not be written'),
      },
    });
    agent = new GossipAgent(core, host, transport, address, o.logger, feed, config.leaveGraceMs);
    await host.start();
    o.logger.info(
      { id: store.id, address, seeds, incarnation: core.selfIncarnation },
      'gossip agent started',
    );
    return agent;
  }

  get id(): NodeId {
    return this.core.id;
  }

  get membershipVersion(): number {
    return this.membershipVersionValue;
  }

  /** Resolves once the membership changes past `seen`, or after `waitMs`. */
  async membershipChange(seen: number, waitMs: number, listenersMax: number): Promise<void> {
    if (seen !== this.membershipVersionValue || waitMs <= 0) return;
    if (this.memberListeners.size >= listenersMax) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.memberListeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.memberListeners.add(done);
    });
  }

  /** Every member we know, ourselves included. */
  members(): MemberView[] {
    return this.core.memberRecords().map((m) => {
      const card = decodeCard(m.tags);
      return {
        id: m.id,
        address: card?.address,
        status: m.status,
        incarnation: m.incarnation,
        tags: card?.tags ?? {},
      };
    });
  }

  /** Hands the core a request; resolves with its reply. */
  request(req: GossipRequest): Promise<GossipReply> {
    if (this.stopped || !this.host.accepting) return Promise.reject(new Error('agent stopped'));
    const client = this.nextClient++;
    return new Promise((resolve) => {
      this.pending.set(client, resolve);
      this.host.input((now) => this.core.request(now, client, req));
    });
  }

  /** Joins through `seeds` (host:port): after a leave, or to merge with their cluster. */
  async join(seeds: readonly PeerAddress[]): Promise<NodeId[]> {
    const lookupAt = performance.now();
    const ids = await findSeeds(seeds, this.address, this.id, this.transport, JOIN_WAIT_MS);
    this.logger.debug({ seeds: ids, ms: performance.now() - lookupAt }, 'seeds looked up');
    await this.request({ type: 'join', seeds: ids });
    return ids;
  }

  /** Graceful leave: the intent spreads for the core's leave grace, then the agent goes quiet. */
  async leave(): Promise<void> {
    await this.request({ type: 'leave' });
    const until = performance.now() + this.leaveGraceMs * 3;
    while (this.core.currentMode !== 'idle' && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.host.stop();
    for (const resolve of this.pending.values())
      resolve({ type: 'refused', reason: { code: 'not-member' } });
    this.pending.clear();
  }

  private send(to: NodeId, msg: GossipTypes['msg']): void {
    this.learnAddress(to);
    if (this.transport.send(to, msg) === 'unknown-peer') this.counters.unaddressable++;
  }

  /** Gives the transport `to`'s address from its card when the card is new or changed. */
  learnAddress(to: NodeId): void {
    const m = this.core.member(to);
    if (m !== undefined && this.cards.get(to) !== m.tags) {
      const card = decodeCard(m.tags);
      const at = card === undefined ? undefined : parsePeerAddress(card.address);
      if (at !== undefined) {
        this.transport.addPeer(to, at);
        this.cards.set(to, m.tags);
      }
    }
  }

  private onEvent(e: GossipEvent): void {
    switch (e.type) {
      case 'member':
        this.membershipVersionValue++;
        for (const l of [...this.memberListeners]) l();
        if (e.about !== this.id)
          this.logger.debug(
            { member: e.about, status: e.status, incarnation: e.incarnation },
            'member',
          );
        return;
      case 'verdict':
        this.counters.verdicts++;
        this.logger.info({ member: e.about, incarnation: e.incarnation }, 'declared dead');
        return;
      case 'refute':
        this.logger.info({ incarnation: e.incarnation }, 'refuted a suspicion of us');
        return;
      case 'paused':
        this.logger.warn({ ms: Math.round(e.ms) }, 'our own process was paused');
        return;
      case 'push-pull':
        this.counters.pushPulls[e.reason] = (this.counters.pushPulls[e.reason] ?? 0) + 1;
        this.logger.debug({ with: e.with, reason: e.reason }, 'push-pull');
        return;
      case 'reaped':
        this.membershipVersionValue++;
        for (const l of [...this.memberListeners]) l();
        this.logger.info({ member: e.about, incarnation: e.incarnation }, 'reaped');
        return;
      case 'dropped':
        return;
      default:
        e satisfies never;
    }
  }

  private onReplies(rs: readonly Reply<GossipReply>[]): void {
    for (const r of rs) {
      const resolve = this.pending.get(r.client);
      if (resolve === undefined) continue;
      this.pending.delete(r.client);
      resolve(r.reply);
    }
  }

  private onDelivered(rd: Ready<GossipTypes>): void {
    for (const d of rd.deliver) this.feed.append(d);
  }
}

/**
 * The ids of the seeds that answer, retried until one does or `waitMs` passes; our own
 * address is skipped (the first node of a cluster may list itself). Each answering seed
 * is connected and authenticated already, so the core's first push-pull goes at once.
 */
async function findSeeds(
  seeds: readonly PeerAddress[],
  self: string,
  selfId: NodeId,
  transport: GossipTransport,
  waitMs: number,
): Promise<NodeId[]> {
  const others = seeds.filter((s) => `${s.host}:${s.port}` !== self);
  if (others.length === 0) return [];
  const until = performance.now() + waitMs;
  for (;;) {
    const ids = await Promise.all(others.map((s) => transport.dialSeed(s, LOOKUP_TIMEOUT_MS)));
    const found: NodeId[] = [];
    for (const id of ids)
      if (id !== undefined && id !== selfId && !found.includes(id)) found.push(id);
    if (found.length > 0) return found;
    if (performance.now() >= until) {
      throw new Error(
        `no seed answered within ${waitMs} ms: ${others.map((s) => `${s.host}:${s.port}`).join(', ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, SEED_RETRY_MS));
  }
}
