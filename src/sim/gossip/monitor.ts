import { retransmitLimit } from '../../gossip/config.ts';
import type { GossipNode } from '../../gossip/node.ts';
import type { GossipDeliver, GossipDurable, GossipEvent, GossipTypes } from '../../gossip/types.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { ClusterView, Monitor } from '../protocol.ts';
import { ObservedGossip, type WireLedger } from './observed.ts';

export type GossipView = ClusterView<GossipTypes, GossipDurable>;

export function gossipNodeOf(view: GossipView, id: NodeId): GossipNode | undefined {
  const core = view.core(id);
  return core instanceof ObservedGossip ? core.node : undefined;
}

/** A node that takes part: up and not idle (never joined, or left). */
export function isLiveMember(view: GossipView, id: NodeId): boolean {
  const node = gossipNodeOf(view, id);
  return node !== undefined && node.currentMode !== 'idle';
}

/**
 * The gossip checks, after every step: incarnations never go back (and a restart resumes
 * strictly above every incarnation announced before it); every datagram fits the packet
 * budget; every suspicion reaches its verdict by its longest timeout; no live node is
 * declared dead on a healthy network (with faults, counted); no membership rumour is
 * retransmitted beyond the limit; events are delivered in order per origin, gaps explicit.
 * After healing: every live node's view is the true membership and every event reached all.
 */
export class GossipMonitor implements Monitor<GossipTypes, GossipDurable> {
  /** Wrong dead verdicts about live nodes (allowed only with faults). */
  falseDead = 0;
  /** Wrong dead verdicts per node they were about. */
  readonly falseDeadAbout = new Map<NodeId, number>();
  verdicts = 0;
  /** Dead or left members forgotten after their reap interval. */
  reaped = 0;
  private readonly maxIncarnation = new Map<NodeId, number>();
  private readonly restarted = new Set<NodeId>();
  /** The incarnation each node's current process started at. */
  private readonly startIncarnation = new Map<NodeId, number>();
  private readonly delivered = new Map<string, number>();
  private readonly healthy: boolean;
  private readonly limit: number;

  constructor(
    readonly view: GossipView,
    private readonly ledger: WireLedger,
    retransmitMult: number,
  ) {
    this.healthy = view.faults.length === 0;
    this.limit = retransmitLimit(retransmitMult, view.members.length);
  }

  onCrash(node: NodeId): void {
    this.restarted.add(node);
    for (const key of [...this.delivered.keys()]) {
      if (key.startsWith(`${node}:`)) this.delivered.delete(key);
    }
  }

  onEvent(node: NodeId, event: GossipEvent, time: number): string | undefined {
    if (event.type === 'reaped') this.reaped++;
    if (event.type !== 'verdict') return undefined;
    this.verdicts++;
    if (!isLiveMember(this.view, event.about)) return undefined;
    // A verdict on an incarnation from before the node's last restart is about a process that did die.
    if (event.incarnation < (this.startIncarnation.get(event.about) ?? 0)) return undefined;
    this.falseDead++;
    this.falseDeadAbout.set(event.about, (this.falseDeadAbout.get(event.about) ?? 0) + 1);
    if (!this.healthy) return undefined;
    return `live node declared dead on a healthy network: n${node} declared n${event.about} (incarnation ${event.incarnation}) dead at ${time.toFixed(1)}ms`;
  }

  onDeliver(node: NodeId, item: GossipDeliver): string | undefined {
    const origin = item.type === 'event' ? item.event.origin : item.origin;
    const first = item.type === 'event' ? item.event.seq : item.from;
    const key = `${node}:${origin}`;
    const last = this.delivered.get(key);
    if (last !== undefined && first !== last + 1) {
      return `n${node} delivered ${item.type} ${first} from n${origin} after ${last}: out of order, or a gap not made explicit`;
    }
    this.delivered.set(key, item.type === 'event' ? item.event.seq : item.to);
    return undefined;
  }

  afterStep(view: GossipView, id: NodeId): string | undefined {
    if (this.ledger.violation !== undefined) return this.ledger.violation;
    const node = gossipNodeOf(view, id);
    if (node === undefined) return undefined;
    const inc = node.selfIncarnation;
    const before = this.maxIncarnation.get(id);
    if (this.restarted.has(id)) {
      // Anything announced before the crash was durable first (Ready rule 1), so the disk
      // holds the highest incarnation others may have seen; a restart must go above it.
      const durable = view.durable(id).incarnation;
      if (inc <= durable) {
        return `incarnation went back: n${id} restarted at ${inc}, not above the ${durable} it persisted before its crash`;
      }
    } else if (before !== undefined && inc < before) {
      return `incarnation went back: n${id} is at ${inc} after ${before}`;
    }
    if (this.restarted.delete(id) || before === undefined) this.startIncarnation.set(id, inc);
    if (before === undefined || inc > before) this.maxIncarnation.set(id, inc);
    return this.checkTimers(node);
  }

  private checkTimers(node: GossipNode): string | undefined {
    const now = node.clock;
    for (const s of node.openSuspicions()) {
      if (now > s.latestAt) {
        return `suspicion without verdict: n${node.id} has suspected n${s.about} since ${s.startedAt.toFixed(1)}ms, past its longest timeout at ${s.latestAt.toFixed(1)}ms (now ${now.toFixed(1)}ms)`;
      }
    }
    const rt = node.retransmits();
    if (rt.max > this.limit) {
      return `retransmit limit broken: n${node.id} sent one rumour ${rt.max} times, limit ${this.limit}`;
    }
    return undefined;
  }

  /** Every live member sees every live member alive at its incarnation and every other node gone. */
  atEnd(view: GossipView): string | undefined {
    const live = view.members.filter((id) => isLiveMember(view, id));
    // A joiner with no other live node (the rest left or crashed for good) has nobody to
    // join: waiting on its seeds is right. Its member table is the one it had when it left:
    // a node that is not a member neither probes nor is probed, so nothing can correct that
    // table and it claims nothing about the cluster; it is not held to the truth. Two
    // joiners join each other (a push-pull makes its receiver a member), so with anyone
    // else live, joining is a failure.
    if (live.length === 1 && gossipNodeOf(view, live[0]!)!.currentMode === 'joining')
      return undefined;
    for (const id of live) {
      const node = gossipNodeOf(view, id)!;
      if (node.currentMode !== 'member') return `n${id} is still ${node.currentMode} after healing`;
    }
    for (const id of live) {
      const problem = this.viewProblem(view, gossipNodeOf(view, id)!, live);
      if (problem !== undefined) return problem;
    }
    return this.eventsProblem(view, live);
  }

  private viewProblem(
    view: GossipView,
    node: GossipNode,
    live: readonly NodeId[],
  ): string | undefined {
    for (const x of view.members) {
      const seen = node.member(x);
      if (live.includes(x)) {
        const inc = gossipNodeOf(view, x)!.selfIncarnation;
        if (seen === undefined || seen.status !== 'alive' || seen.incarnation !== inc) {
          const what = seen === undefined ? 'unknown' : `${seen.status} at ${seen.incarnation}`;
          return `not converged: n${node.id} sees live n${x} (incarnation ${inc}) as ${what}`;
        }
      } else if (seen !== undefined && (seen.status === 'alive' || seen.status === 'suspect')) {
        const why = view.isUp(x) ? 'has left' : 'crashed';
        return `not converged: n${node.id} sees n${x}, which ${why}, as ${seen.status}`;
      }
    }
    return undefined;
  }

  private eventsProblem(view: GossipView, live: readonly NodeId[]): string | undefined {
    for (const origin of view.members) {
      let head = 0;
      for (const id of live) head = Math.max(head, gossipNodeOf(view, id)!.eventHead(origin));
      for (const id of live) {
        const h = gossipNodeOf(view, id)!.eventHead(origin);
        if (h !== head)
          return `events not converged: n${id} has n${origin}'s events up to ${h}, another node up to ${head}`;
      }
    }
    return undefined;
  }
}
