import type { GossipConfig } from '../../gossip/config.ts';
import type {
  GossipDurable,
  GossipEvent,
  GossipMsg,
  GossipRequest,
  GossipTypes,
} from '../../gossip/types.ts';
import type { Core, Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import { theoryRounds } from '../../sim/gossip/dissemination.ts';
import type { GossipMonitor } from '../../sim/gossip/monitor.ts';
import { ObservedGossip } from '../../sim/gossip/observed.ts';
import { gossipSimProtocol } from '../../sim/gossip/plugin.ts';
import { Playground } from '../../sim/interactive.ts';
import type { MessageLook, NodeView, PlaygroundProtocol } from '../../sim/interactive-protocol.ts';
import type { ClusterView } from '../../sim/protocol.ts';

/**
 * Gossip (src/gossip) in the playground: the real `GossipNode`, built by the simulator's
 * plugin (src/sim/gossip/plugin.ts, which also sizes every datagram against the packet
 * budget), watched by the simulator's own `GossipMonitor` (wrong dead verdicts, delivery
 * order). The view reads only what the core exposes: member records, open suspicions,
 * health score, and the events it delivers.
 */

/** Events remembered per node: when each (origin, seq) was delivered there. */
const LEARNED_KEPT_MAX = 256;

export class WatchedGossip implements Core<GossipTypes> {
  readonly id: NodeId;
  /** `origin.seq` → simulated time delivered here. */
  readonly learned = new Map<string, number>();
  /** `origin.seq` → the node whose message taught us it (0: our own client's publish). */
  readonly learnedFrom = new Map<string, NodeId>();
  private pending: Ready<GossipTypes> | undefined;
  /** The sender of the input being handled, 0 for a tick or a client request. */
  private from: NodeId = 0;

  constructor(
    readonly observed: ObservedGossip,
    private readonly watch: GossipWatch,
  ) {
    this.id = observed.id;
  }

  get node() {
    return this.observed.node;
  }

  tick(now: number): void {
    this.from = 0;
    this.observed.tick(now);
  }
  receive(now: number, from: NodeId, msg: GossipMsg): void {
    this.from = from;
    this.observed.receive(now, from, msg);
  }
  request(now: number, client: ClientId, req: GossipRequest): void {
    this.from = 0;
    this.observed.request(now, client, req);
  }
  deadline(): number {
    return this.observed.deadline();
  }
  ready(): Ready<GossipTypes> | undefined {
    this.pending = this.observed.ready();
    return this.pending;
  }
  advance(): void {
    const rd = this.pending;
    this.pending = undefined;
    // Read the batch before handing it back: the core may reuse its arrays.
    if (rd !== undefined) this.record(rd);
    this.observed.advance();
  }

  private record(rd: Ready<GossipTypes>): void {
    const now = this.node.clock;
    for (const d of rd.deliver) {
      if (d.type === 'event') {
        const key = `${d.event.origin}.${d.event.seq}`;
        this.learned.set(key, now);
        this.learnedFrom.set(key, this.from);
        if (this.learned.size > LEARNED_KEPT_MAX) {
          const oldest = this.learned.keys().next().value;
          if (oldest !== undefined) {
            this.learned.delete(oldest);
            this.learnedFrom.delete(oldest);
          }
        }
      }
      this.watch.check(this.watch.monitor?.onDeliver(this.id, d));
    }
    for (const e of rd.events) this.watch.check(this.watch.monitor?.onEvent(this.id, e, now));
  }
}

/** The simulator's monitor for one playground, and the first violation it reported. */
export class GossipWatch {
  monitor: GossipMonitor | undefined;
  violation: string | undefined;

  check(v: string | undefined): void {
    if (v !== undefined) this.violation ??= v;
  }
}

export interface GossipPlaygroundSettings {
  readonly seed: number;
  readonly nodes: number;
  /** Members each gossip round goes to (memberlist `GossipNodes`); events use it too. */
  readonly fanout: number;
  /** Datagram budget (memberlist `UDPBufferSize`). */
  readonly packetBytesMax: number;
  readonly lossRate: number;
}

function lookOf(msg: GossipMsg): MessageLook {
  switch (msg.type) {
    case 'ping':
      return { label: 'ping', tone: 'heartbeat' };
    case 'ack':
      return { label: 'ack', tone: 'heartbeat' };
    case 'nack':
      return { label: 'nack', tone: 'heartbeat' };
    case 'ping-req':
      return { label: 'ping-req', tone: 'vote' };
    case 'gossip':
      return {
        label: 'gossip',
        tone: msg.rumours.some((r) => r.kind === 'event') ? 'append' : 'other',
      };
    case 'seen':
      return { label: 'seen', tone: 'appendReply' };
    case 'push-pull':
      return { label: 'push-pull', tone: 'voteReply' };
    case 'events':
      return { label: 'events', tone: 'append' };
  }
}

function describeEvent(e: GossipEvent): string | undefined {
  switch (e.type) {
    case 'verdict':
      return `declares n${e.about} dead (incarnation ${e.incarnation})`;
    case 'refute':
      return `refutes a suspicion: incarnation ${e.incarnation}`;
    case 'member':
      return e.status === 'suspect' ? `suspects n${e.about}` : undefined;
    case 'paused':
      return `was paused ${e.ms.toFixed(0)} ms`;
    default:
      return undefined;
  }
}

function viewOf(core: Core<GossipTypes> | undefined): NodeView {
  const node = core instanceof WatchedGossip ? core.node : undefined;
  return {
    role: node === undefined ? 'down' : node.currentMode,
    term: node?.selfIncarnation ?? 0,
    leader: 0,
    commit: 0,
    applied: 0,
    log: [],
    electionTimer: false,
    badge: node === undefined ? 'down' : `health ${node.healthScore}`,
  };
}

export type GossipPg = Playground<GossipTypes, GossipDurable>;

/**
 * A playground of gossip nodes: every node seeded with all the others, the plugin's cores,
 * and the monitor reading the playground as a cluster view.
 */
export function gossipPlayground(s: GossipPlaygroundSettings): {
  pg: GossipPg;
  watch: GossipWatch;
} {
  const config: Partial<Omit<GossipConfig, 'id' | 'seeds'>> = {
    gossipNodes: s.fanout,
    eventFanout: s.fanout,
    packetBytesMax: s.packetBytesMax,
  };
  const plugin = gossipSimProtocol({
    name: 'gossip',
    description: 'gossip in the playground',
    config,
    encodeEvery: 16,
  });
  const watch = new GossipWatch();
  let pg: GossipPg | undefined;
  const view: ClusterView<GossipTypes, GossipDurable> = {
    members: Array.from({ length: s.nodes }, (_, i) => i + 1),
    now: () => pg?.now ?? 0,
    core: (id) => {
      const c = pg?.core(id);
      return c instanceof WatchedGossip ? c.observed : undefined;
    },
    durable: (id) => pg!.durable(id),
    isUp: (id) => pg?.core(id) !== undefined,
    isPaused: () => false,
    faults: s.lossRate > 0 ? ['loss'] : [],
  };
  // The monitor makes the wire ledger the cores report to, so it comes first.
  watch.monitor = plugin.createMonitor(view) as GossipMonitor;
  const protocol: PlaygroundProtocol<GossipTypes, GossipDurable> = {
    name: 'gossip',
    title: 'Gossip',
    createCore(init) {
      const core = plugin.createCore(init);
      if (!(core instanceof ObservedGossip)) throw new Error('the gossip plugin built no node');
      return new WatchedGossip(core, watch);
    },
    emptyDurable: (members) => plugin.emptyDurable({ id: members[0] ?? 1, members }),
    applyPersist: (d, item) => plugin.applyPersist(d, item),
    nodeView: viewOf,
    clientRequest: (_id, value) => ({ type: 'publish', name: 'event', payload: value }),
    requestIdOf: () => undefined,
    onReply(reply) {
      switch (reply.type) {
        case 'published':
          return { kind: 'decided', note: `event n${reply.origin}.${reply.seq}` };
        case 'ok':
          return { kind: 'decided', note: 'ok' };
        case 'refused':
          return { kind: 'failed', reason: reply.reason.code };
      }
    },
    describeMessage: lookOf,
    describeEvent,
  };
  pg = new Playground(protocol, {
    seed: s.seed,
    nodes: s.nodes,
    nodesMax: 200,
    lossRate: s.lossRate,
    flightsMax: 50_000,
    agendaMax: 200_000,
  });
  return { pg, watch };
}

export { theoryRounds };

/**
 * Gossip rounds an event took to reach every node in `cores`: the longest chain of relays
 * from its origin (each node learned it from one sender's message), the quantity the
 * round-by-round theory counts. Undefined until every one of them has it.
 */
export function relayRounds(cores: readonly WatchedGossip[], key: string): number | undefined {
  const byId = new Map(cores.map((c) => [c.id, c]));
  const depth = new Map<NodeId, number>();
  const depthOf = (id: NodeId, seen: number): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    const from = byId.get(id)?.learnedFrom.get(key) ?? 0;
    // A sender that crashed since, or a loop (impossible: a node learns an event once), ends the chain.
    const d =
      from === 0 || !byId.has(from) || seen > cores.length ? 0 : depthOf(from, seen + 1) + 1;
    depth.set(id, d);
    return d;
  };
  let max = 0;
  for (const c of cores) {
    if (!c.learned.has(key)) return undefined;
    max = Math.max(max, depthOf(c.id, 0));
  }
  return max;
}
