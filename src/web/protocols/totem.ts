import type { Core, Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { Playground } from '../../sim/interactive.ts';
import type { MessageLook, NodeView, PlaygroundProtocol } from '../../sim/interactive-protocol.ts';
import { totemSimProtocol } from '../../sim/totem/plugin.ts';
import type { TotemConfig } from '../../totem/config.ts';
import { TotemNode } from '../../totem/node.ts';
import {
  type DeliveryMode,
  ringKey,
  type TotemDeliver,
  type TotemDurable,
  type TotemEvent,
  type TotemMsg,
  type TotemRequest,
  type TotemStatus,
  type TotemTypes,
} from '../../totem/types.ts';

/**
 * Totem (src/totem) in the playground: the real `TotemNode`, built by the simulator's
 * plugin (src/sim/totem/plugin.ts), inside the interactive host. The view only reads what
 * the core reports: `status()`, `holdsToken()`, the tokens and datagrams it sends, and the
 * stream it delivers (messages and configuration changes), which a thin wrapper records.
 */

/**
 * Timing scaled down from corosync's so a crash is seen in seconds of slow motion: a 200 ms
 * token (+50 ms per member above two) over the playground's ~12 ms links, still four
 * retransmissions before loss and consensus at 1.2 × token, as corosync derives them.
 */
export const PLAYGROUND_TOTEM_TIMING: Partial<TotemConfig> = {
  tokenBaseMs: 200,
  tokenPerMemberMs: 50,
  mergeMs: 150,
  observe: false,
};

/** Entries of the delivered stream kept per node for drawing and checking. */
export const DELIVERED_KEPT_MAX = 4000;

export type DeliveredEntry =
  | {
      readonly kind: 'message';
      /** `node.n` of the publish: who sent it and its number in that boot. */
      readonly label: string;
      readonly sender: NodeId;
      readonly boot: number;
      readonly n: number;
      readonly mode: DeliveryMode;
      readonly ring: string;
      readonly seq: number;
      readonly in: 'regular' | 'transitional';
    }
  | {
      readonly kind: 'config';
      readonly config: 'transitional' | 'regular';
      readonly ring: string;
      readonly members: readonly NodeId[];
    };

function entryOf(d: TotemDeliver): DeliveredEntry {
  if (d.type === 'config') {
    return { kind: 'config', config: d.kind, ring: ringKey(d.ring), members: [...d.members] };
  }
  return {
    kind: 'message',
    label: `${d.origin.node}.${d.origin.n}`,
    sender: d.origin.node,
    boot: d.origin.boot,
    n: d.origin.n,
    mode: d.mode,
    ring: ringKey(d.ring),
    seq: d.seq,
    in: d.in,
  };
}

/**
 * The real node, with the stream it delivers recorded as the host carries it out (on
 * `advance`, so a batch counts once). Everything else is the node's own behaviour.
 */
export class WatchedTotem implements Core<TotemTypes> {
  readonly id: NodeId;
  readonly delivered: DeliveredEntry[] = [];
  /** Entries dropped off the front of `delivered` to keep it bounded. */
  forgotten = 0;
  private pending: Ready<TotemTypes> | undefined;

  constructor(readonly node: TotemNode) {
    this.id = node.id;
  }

  tick(now: number): void {
    this.node.tick(now);
  }
  receive(now: number, from: NodeId, msg: TotemMsg): void {
    this.node.receive(now, from, msg);
  }
  request(now: number, client: ClientId, req: TotemRequest): void {
    this.node.request(now, client, req);
  }
  deadline(): number {
    return this.node.deadline();
  }
  ready(): Ready<TotemTypes> | undefined {
    this.pending = this.node.ready();
    return this.pending;
  }
  advance(): void {
    for (const d of this.pending?.deliver ?? []) this.delivered.push(entryOf(d));
    const extra = this.delivered.length - DELIVERED_KEPT_MAX;
    if (extra > 0) {
      this.delivered.splice(0, extra);
      this.forgotten += extra;
    }
    this.pending = undefined;
    this.node.advance();
  }

  status(): TotemStatus {
    return this.node.status();
  }

  holdsToken(): boolean {
    return this.node.holdsToken();
  }
}

const encoder = new TextEncoder();

/** A publish's value names its mode: `safe:…` or `agreed:…`. */
export function publishValue(mode: DeliveryMode, label: string): string {
  return `${mode}:${label}`;
}

function requestOf(ref: number, value: string): TotemRequest {
  const safe = value.startsWith('safe:');
  return { type: 'publish', mode: safe ? 'safe' : 'agreed', data: encoder.encode(value), ref };
}

function lookOf(msg: TotemMsg): MessageLook {
  switch (msg.type) {
    case 'token':
      return {
        label: `seq ${msg.seq} aru ${msg.aru}\nfcc ${msg.fcc} backlog ${msg.backlog}${msg.rtr.length > 0 ? `\nrtr ${msg.rtr.length}` : ''}${msg.recovery ? '\nrecovery' : ''}`,
        tone: 'vote',
      };
    case 'mcast':
      return {
        label: msg.old === null ? String(msg.seq) : `${msg.old.seq}↺`,
        tone: msg.mode === 'safe' ? 'appendReply' : 'append',
      };
    case 'join':
      return {
        label: `join {${msg.procs.join(',')}}${msg.failed.length > 0 ? ` failed {${msg.failed.join(',')}}` : ''}`,
        tone: 'other',
      };
    case 'commit':
      return { label: `commit ${msg.rotation}/2`, tone: 'voteReply' };
    case 'probe':
      return { label: 'probe', tone: 'heartbeat' };
    case 'ack':
      return { label: 'ack', tone: 'heartbeat' };
    case 'release':
      return { label: 'release', tone: 'heartbeat' };
  }
}

const stateNames = {
  gather: 'Gather',
  commit: 'Commit',
  recovery: 'Recovery',
  operational: 'Operational',
} as const;

function describeEvent(e: TotemEvent): string | undefined {
  if (e.type !== 'state') return undefined;
  return e.state === 'operational'
    ? `Operational in ring ${ringKey(e.ring)}`
    : `enters ${stateNames[e.state]}`;
}

function viewOf(core: Core<TotemTypes> | undefined, durable: TotemDurable): NodeView {
  if (!(core instanceof WatchedTotem)) {
    return {
      role: 'down',
      term: durable.ringSeq,
      leader: 0,
      commit: 0,
      applied: 0,
      log: [],
      electionTimer: false,
      badge: `ring seq ${durable.ringSeq}`,
    };
  }
  const s = core.status();
  return {
    role: s.state,
    term: s.ring.seq,
    leader: s.ring.rep,
    commit: s.delivered,
    applied: s.delivered,
    log: [],
    electionTimer: false,
    badge: `ring ${ringKey(s.ring)}`,
  };
}

export interface TotemPlaygroundSettings {
  /** Datagrams per rotation (corosync `window_size`); at most 17 per visit as corosync. */
  readonly windowSize: number;
}

/** The adapter for one window size (a changed window rebuilds the playground). */
export function totemPlayground(
  settings: TotemPlaygroundSettings,
): PlaygroundProtocol<TotemTypes, TotemDurable> {
  const maxMessagesPerVisit = Math.min(17, settings.windowSize);
  const plugin = totemSimProtocol({
    name: 'totem',
    description: 'Totem in the playground',
    totem: { ...PLAYGROUND_TOTEM_TIMING, windowSize: settings.windowSize, maxMessagesPerVisit },
  });
  return {
    name: 'totem',
    title: 'Totem',
    createCore(init) {
      const core = plugin.createCore(init);
      if (!(core instanceof TotemNode)) throw new Error('the Totem plugin built no TotemNode');
      return new WatchedTotem(core);
    },
    emptyDurable: (members) => plugin.emptyDurable({ id: members[0] ?? 1, members }),
    applyPersist: (durable, item) => plugin.applyPersist(durable, item),
    nodeView: viewOf,
    clientRequest: requestOf,
    requestIdOf: (reply) => (reply.type === 'status' ? undefined : reply.ref),
    onReply(reply) {
      switch (reply.type) {
        case 'published':
          return { kind: 'decided', note: `delivered at ${ringKey(reply.ring)}#${reply.seq}` };
        case 'backpressure':
          return { kind: 'failed', reason: `backpressure: ${reply.depth} queued` };
        case 'refused':
          return { kind: 'failed', reason: `${reply.reason}: ${reply.detail}` };
        case 'status':
          return { kind: 'failed', reason: 'unexpected status' };
      }
    },
    describeMessage: lookOf,
    describeEvent,
  };
}

type TotemPg = Playground<TotemTypes, TotemDurable>;

/**
 * The senders: the first `senders` live nodes each publish one message every `everyMs` of
 * simulated time, alternately agreed and safe when `safeShare` asks for both. It runs in
 * simulated time between the host's events, so a seed fixes the run.
 */
export class TotemSenders {
  senders = 2;
  everyMs = 40;
  /** Every k-th publish of a sender is safe (0: none). */
  safeEvery = 3;
  private nextAt = 0;
  private readonly published = new Map<NodeId, number>();

  constructor(private readonly pg: TotemPg) {
    this.nextAt = pg.now + this.everyMs;
  }

  /** Runs the playground to `t`, publishing on the way. */
  runUntil(t: number): void {
    while (this.senders > 0 && this.nextAt <= t) {
      this.pg.runUntil(this.nextAt);
      this.publishRound();
      this.nextAt += this.everyMs;
    }
    if (this.senders === 0) this.nextAt = Math.max(this.nextAt, t + this.everyMs);
    this.pg.runUntil(t);
  }

  private publishRound(): void {
    const live = this.pg.members.filter((id) => this.pg.node(id).up);
    for (const id of live.slice(0, this.senders)) {
      const k = (this.published.get(id) ?? 0) + 1;
      this.published.set(id, k);
      const safe = this.safeEvery > 0 && k % this.safeEvery === 0;
      this.pg.clientRequest(publishValue(safe ? 'safe' : 'agreed', `n${id}-${k}`), id);
    }
  }
}
