import { assert, unreachable } from '../kernel/assert.ts';
import type { Core, CoreTypes, Ready } from '../kernel/core.ts';
import { NO_NODE, type NodeId, nodeIds } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import { Agenda, type AgendaItem } from './interactive-agenda.ts';
import type { LogCell, MessageLook, NodeView, PlaygroundProtocol } from './interactive-protocol.ts';
import { dropReasons, Network } from './network.ts';

/**
 * The interactive host behind the playground: the real cores, driven through the kernel
 * `Core` contract one event at a time, over the simulator's network model. Unlike the batch
 * simulator it exposes everything a picture needs (messages in flight with their send and
 * arrival times, each node's timer, the clients' requests) and takes commands between
 * events (crash, restart, partition, loss, client requests). It is pure: time only moves
 * through `step` and `runUntil`, randomness comes from the seed.
 *
 * The disk is instantaneous: a batch's persist items are applied before its messages
 * leave, which keeps the durability rule with no fsync to wait for.
 */
export interface PlaygroundSettings {
  readonly seed: number;
  readonly nodes: number;
  /** Largest cluster accepted: the consensus pages draw at most 9; gossip pages draw hundreds. */
  readonly nodesMax: number;
  /** One-way latency: base plus an exponential jitter with this mean. */
  readonly latencyBaseMs: number;
  readonly latencyJitterMs: number;
  /** Probability that a node-to-node message is lost. */
  readonly lossRate: number;
  /** Messages in flight at once; more are dropped (reason 'overflow'). */
  readonly flightsMax: number;
  /** Scheduled events (deliveries, ticks, retries) at once. */
  readonly agendaMax: number;
  /** Captions kept for the event feed. */
  readonly captionsMax: number;
  /** Client requests remembered; the oldest finished ones are forgotten first. */
  readonly requestsMax: number;
  /** Sends of one client request before it is given up. */
  readonly attemptsMax: number;
  /** Delay before a client resends a request that found no leader. */
  readonly retryMs: number;
}

export const defaultPlaygroundSettings: PlaygroundSettings = {
  seed: 1,
  nodes: 5,
  nodesMax: 9,
  latencyBaseMs: 10,
  latencyJitterMs: 5,
  lossRate: 0,
  flightsMax: 2000,
  agendaMax: 10_000,
  captionsMax: 12,
  requestsMax: 64,
  attemptsMax: 30,
  retryMs: 60,
};

/** The client is drawn apart from the nodes; its messages name it as node 0. */
export const CLIENT: NodeId = NO_NODE;

export interface Flight {
  readonly id: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly sentAt: number;
  readonly arriveAt: number;
  readonly look: MessageLook;
  /** Why the network lost it; the dot fades out halfway. */
  readonly lost: string | undefined;
}

export interface NodeState {
  readonly id: NodeId;
  readonly up: boolean;
  readonly view: NodeView;
  /** The running timer: when it was (re)armed and when it fires; undefined if none. */
  readonly timerStart: number;
  readonly timerDeadline: number;
}

export type RequestPhase = 'sending' | 'accepted' | 'committed' | 'failed';

export interface ClientRequest {
  readonly id: number;
  readonly value: string;
  phase: RequestPhase;
  /** The node it was last sent to (the first node, for a request sent to every node). */
  target: NodeId;
  /** Sent to every node at once (Fast Paxos), so a reply from any node may answer it. */
  readonly fanout: boolean;
  attempts: number;
  index: number;
  term: number;
  note: string;
}

export interface Caption {
  readonly at: number;
  readonly node: NodeId;
  readonly text: string;
}

interface Host<T extends CoreTypes, Durable> {
  readonly id: NodeId;
  core: Core<T> | undefined;
  durable: Durable;
  rng: Rng;
  incarnation: number;
  tickGen: number;
  tickAt: number;
  timerStart: number;
  timerDeadline: number;
}

interface InFlight extends Flight {
  readonly payload: unknown;
}

export class Playground<T extends CoreTypes, Durable> {
  readonly members: readonly NodeId[];
  readonly settings: PlaygroundSettings;
  private readonly hosts: Host<T, Durable>[];
  private readonly agenda: Agenda;
  private readonly network: Network;
  private readonly flying = new Map<number, InFlight>();
  private readonly requestList: ClientRequest[] = [];
  private readonly captionList: Caption[] = [];
  private readonly clientRng: Rng;
  private flightSeq = 0;
  private requestSeq = 0;
  private time = 0;

  constructor(
    readonly protocol: PlaygroundProtocol<T, Durable>,
    settings: Partial<PlaygroundSettings> = {},
  ) {
    const s = { ...defaultPlaygroundSettings, ...settings };
    validate(s);
    this.settings = s;
    this.members = nodeIds(s.nodes);
    const root = Rng.fromSeed(s.seed);
    const latency = {
      baseMs: s.latencyBaseMs,
      jitterMeanMs: s.latencyJitterMs,
      tailChance: 0,
      tailMeanMs: 0,
    };
    this.network = new Network(s.nodes + 1, s.nodes, latency, root.fork());
    this.network.faults.loss = s.lossRate;
    this.clientRng = root.fork();
    this.agenda = new Agenda(s.agendaMax);
    const nodesRng = root.fork();
    this.hosts = this.members.map((id) => ({
      id,
      core: undefined,
      durable: protocol.emptyDurable(this.members),
      rng: nodesRng.fork(),
      incarnation: 0,
      tickGen: 0,
      tickAt: Number.POSITIVE_INFINITY,
      timerStart: 0,
      timerDeadline: Number.POSITIVE_INFINITY,
    }));
    for (const host of this.hosts) this.boot(host);
  }

  /** Simulated time, ms. */
  get now(): number {
    return this.time;
  }

  /** Time of the next event, +Infinity when nothing is scheduled. */
  nextEventAt(): number {
    return this.agenda.peekTime();
  }

  /** Carries out the next event; returns false when nothing is scheduled. */
  step(): boolean {
    const next = this.agenda.pop();
    if (next === undefined) return false;
    assert(next.at >= this.time, 'playground time runs forward');
    this.time = next.at;
    this.dispatch(next.item);
    return true;
  }

  /** Carries out every event due by `t`, then sets the clock to `t`. */
  runUntil(t: number): void {
    while (this.agenda.peekTime() <= t) this.step();
    if (t > this.time) this.time = t;
  }

  nodes(): NodeState[] {
    return this.hosts.map((h) => ({
      id: h.id,
      up: h.core !== undefined,
      view: this.protocol.nodeView(h.core, h.durable),
      timerStart: h.timerStart,
      timerDeadline: h.timerDeadline,
    }));
  }

  node(id: NodeId): NodeState {
    const host = this.host(id);
    return {
      id,
      up: host.core !== undefined,
      view: this.protocol.nodeView(host.core, host.durable),
      timerStart: host.timerStart,
      timerDeadline: host.timerDeadline,
    };
  }

  /** What `id`'s disk holds now (for inspection and for checks that read it). */
  durable(id: NodeId): Durable {
    return this.host(id).durable;
  }

  /** The live core of `id` (for inspection), undefined while crashed. */
  core(id: NodeId): Core<T> | undefined {
    return this.host(id).core;
  }

  flights(): readonly Flight[] {
    return [...this.flying.values()];
  }

  requests(): readonly ClientRequest[] {
    return this.requestList;
  }

  captions(): readonly Caption[] {
    return this.captionList;
  }

  // --- commands ------------------------------------------------------------------------

  crash(id: NodeId): void {
    const host = this.host(id);
    if (host.core === undefined) return;
    host.core = undefined;
    host.incarnation++;
    host.tickGen++;
    host.tickAt = Number.POSITIVE_INFINITY;
    host.timerDeadline = Number.POSITIVE_INFINITY;
    this.caption(id, `n${id} crashed (its disk survives)`);
  }

  restart(id: NodeId): void {
    const host = this.host(id);
    if (host.core !== undefined) return;
    this.boot(host);
    this.caption(id, `n${id} restarted from its disk`);
  }

  /** Splits the nodes into groups; nodes in no group form one more group. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.network.partition(groups.map((g) => g.map((id) => this.host(id).id - 1)));
    this.caption(CLIENT, `partition: ${groups.map((g) => `{${g.join(',')}}`).join(' ')}`);
  }

  heal(): void {
    const loss = this.network.faults.loss;
    this.network.heal();
    this.network.faults.loss = loss;
  }

  setLossRate(rate: number): void {
    assert(rate >= 0 && rate < 1, 'loss rate must be in [0, 1)');
    this.network.faults.loss = rate;
  }

  get lossRate(): number {
    return this.network.faults.loss;
  }

  /**
   * A client sends a request carrying `value` to `to` (default: the node it believes
   * leads, else a random live node). Returns its id; watch it in `requests()`.
   */
  clientRequest(value: string, to?: NodeId): number {
    if (to === undefined && this.protocol.fanOut !== undefined) return this.clientBroadcast(value);
    const target = to ?? this.guessLeader();
    const req = this.newRequest(value, target, false);
    this.sendRequest(req, target);
    return req.id;
  }

  /**
   * A client sends `value` to every node itself, as a Fast Paxos client does (the protocol
   * must define `fanOut`). `lagMs(node)` slows the copy to that node: a client far from it.
   * Two broadcasts with mirrored lags reach the nodes in opposite orders, which is how the
   * playground provokes a Fast Paxos collision on purpose.
   */
  clientBroadcast(value: string, lagMs: (node: NodeId) => number = () => 0): number {
    assert(this.protocol.fanOut !== undefined, `${this.protocol.name} clients do not fan out`);
    const req = this.newRequest(value, this.members[0] ?? CLIENT, true);
    this.sendFanOut(req, lagMs);
    return req.id;
  }

  private newRequest(value: string, target: NodeId, fanout: boolean): ClientRequest {
    const req: ClientRequest = {
      id: ++this.requestSeq,
      value,
      phase: 'sending',
      target,
      fanout,
      attempts: 0,
      index: 0,
      term: 0,
      note: '',
    };
    this.requestList.push(req);
    this.forgetOldRequests();
    return req;
  }

  // --- engine --------------------------------------------------------------------------

  private dispatch(item: AgendaItem): void {
    switch (item.kind) {
      case 'deliver':
        this.deliver(item.flight);
        return;
      case 'tick':
        this.tick(item.node, item.gen);
        return;
      case 'retry': {
        const req = this.requestList.find((r) => r.id === item.request);
        if (req === undefined || req.phase !== 'sending') return;
        if (req.fanout) this.sendFanOut(req, () => 0);
        else this.sendRequest(req, this.guessLeader());
        return;
      }
      default:
        unreachable(item, 'agenda item');
    }
  }

  private boot(host: Host<T, Durable>): void {
    const first = host.incarnation === 0;
    host.core = this.protocol.createCore({
      id: host.id,
      members: this.members,
      durable: first ? undefined : host.durable,
      rng: host.rng.fork(),
      now: this.time,
    });
    assert(host.core.id === host.id, `core for n${host.id} reports id ${host.core.id}`);
    this.afterInput(host);
  }

  private tick(index: number, gen: number): void {
    const host = this.hosts[index]!;
    if (gen !== host.tickGen || host.core === undefined) return;
    host.tickAt = Number.POSITIVE_INFINITY;
    host.core.tick(this.time);
    this.afterInput(host);
  }

  private deliver(flightId: number): void {
    const f = this.flying.get(flightId);
    if (f === undefined) return;
    this.flying.delete(flightId);
    if (f.lost !== undefined) return;
    if (f.to === CLIENT) {
      this.onReply(f.from, f.payload as T['reply']);
      return;
    }
    const host = this.host(f.to);
    const core = host.core;
    if (core === undefined) return;
    if (f.from === CLIENT) core.request(this.time, 1, f.payload as T['request']);
    else core.receive(this.time, f.from, f.payload as T['msg']);
    this.afterInput(host);
  }

  /** Drains the core's output (persist first, then effects) and re-arms its timer. */
  private afterInput(host: Host<T, Durable>): void {
    const core = host.core;
    if (core === undefined) return;
    for (let rd = core.ready(); rd !== undefined; rd = core.ready()) {
      for (const item of rd.persist) host.durable = this.protocol.applyPersist(host.durable, item);
      this.carryOut(host.id, rd);
      core.advance();
    }
    this.armTimer(host, core);
  }

  private carryOut(from: NodeId, rd: Ready<T>): void {
    for (const m of [...rd.early, ...rd.messages]) {
      assert(m.to >= 1 && m.to <= this.members.length && m.to !== from, `n${from} -> n${m.to}`);
      this.transmit(from, m.to, m.msg, this.protocol.describeMessage(m.msg));
    }
    for (const r of [...rd.earlyReplies, ...rd.replies]) {
      this.transmit(from, CLIENT, r.reply, { label: 'reply', tone: 'other' });
    }
    for (const e of rd.events) {
      const text = this.protocol.describeEvent(e);
      if (text !== undefined) this.caption(from, `n${from} ${text}`);
    }
  }

  private armTimer(host: Host<T, Durable>, core: Core<T>): void {
    const deadline = core.deadline();
    if (deadline !== host.timerDeadline) {
      // A deadline that moves is a timer re-armed now: the ring restarts full.
      if (deadline > host.timerDeadline || host.timerDeadline === Number.POSITIVE_INFINITY) {
        host.timerStart = this.time;
      }
      host.timerDeadline = deadline;
    }
    if (deadline === Number.POSITIVE_INFINITY) return;
    const at = Math.max(deadline, this.time);
    if (at >= host.tickAt) return;
    host.tickAt = at;
    this.agenda.push(at, { kind: 'tick', node: host.id - 1, gen: ++host.tickGen });
  }

  /** Endpoints for the network: node n is n-1, the client comes after the nodes. */
  private endpoint(id: NodeId): number {
    return id === CLIENT ? this.members.length : id - 1;
  }

  /** Sends one message; `lagMs` is extra one-way delay on top of the network's. */
  private transmit(from: NodeId, to: NodeId, payload: unknown, look: MessageLook, lagMs = 0): void {
    assert(lagMs >= 0 && Number.isFinite(lagMs), 'a message lag is finite and non-negative');
    const id = ++this.flightSeq;
    const s = this.settings;
    let arriveAt = this.network.route(this.endpoint(from), this.endpoint(to), this.time);
    let lost: string | undefined;
    if (arriveAt < 0) {
      lost = dropReasons[arriveAt] ?? 'lost';
      arriveAt = this.time + s.latencyBaseMs + s.latencyJitterMs;
    }
    arriveAt += lagMs;
    if (this.flying.size >= s.flightsMax || !this.agenda.hasRoom()) return;
    const flight: InFlight = { id, from, to, sentAt: this.time, arriveAt, look, lost, payload };
    this.flying.set(id, flight);
    this.agenda.push(arriveAt, { kind: 'deliver', flight: id });
  }

  // --- the client ----------------------------------------------------------------------

  private sendRequest(req: ClientRequest, to: NodeId): void {
    if (req.attempts >= this.settings.attemptsMax) {
      req.phase = 'failed';
      req.note = `gave up after ${req.attempts} attempts`;
      return;
    }
    req.attempts++;
    req.target = to;
    const msg = this.protocol.clientRequest(req.id, req.value);
    this.transmit(CLIENT, to, msg, { label: `set ${req.value}`, tone: 'other' });
  }

  private sendFanOut(req: ClientRequest, lagMs: (node: NodeId) => number): void {
    const fanOut = this.protocol.fanOut;
    assert(fanOut !== undefined && req.fanout, 'only fan-out requests are sent to every node');
    if (req.attempts >= this.settings.attemptsMax) {
      req.phase = 'failed';
      req.note = `gave up after ${req.attempts} attempts`;
      return;
    }
    req.attempts++;
    for (const send of fanOut(req.id, req.value, this.members)) {
      const look: MessageLook = { label: `propose ${req.value}`, tone: 'other' };
      this.transmit(CLIENT, send.to, send.request, look, lagMs(send.to));
    }
  }

  private onReply(from: NodeId, reply: T['reply']): void {
    const reaction = this.protocol.onReply(reply);
    // Replies that carry no request id (single-decree Paxos) answer the oldest request
    // still waiting on that node.
    const named = this.protocol.requestIdOf?.(reply);
    const id = named ?? (reply as { readonly id?: unknown }).id;
    const req =
      typeof id === 'number'
        ? this.requestList.find((r) => r.id === id)
        : this.requestList.find((r) => r.phase === 'sending' && (r.fanout || r.target === from));
    if (req === undefined || req.phase !== 'sending') return;
    switch (reaction.kind) {
      case 'accepted':
        req.phase = 'accepted';
        req.index = reaction.index;
        req.term = reaction.term;
        req.note =
          reaction.index > 0
            ? `appended by n${from} at index ${reaction.index}`
            : `queued by leader n${from}`;
        return;
      case 'redirect':
        if (reaction.to !== undefined && reaction.to !== from && reaction.to !== NO_NODE) {
          this.sendRequest(req, reaction.to);
        } else if (this.agenda.hasRoom()) {
          this.agenda.push(this.time + this.settings.retryMs, { kind: 'retry', request: req.id });
        }
        return;
      case 'decided':
        req.phase = 'committed';
        req.note =
          reaction.value === undefined || reaction.value === req.value
            ? reaction.note
            : `${reaction.note} (not its own: another client's value won)`;
        return;
      case 'failed':
        req.phase = 'failed';
        req.note = reaction.reason;
        return;
      default:
        unreachable(reaction, 'client reaction');
    }
  }

  /**
   * Marks accepted requests committed once every live node's commit index covers them. A
   * request accepted at an unknown index (0) is found by its value inside the log cells.
   */
  refreshRequests(): void {
    const views = this.nodes().filter((n) => n.up);
    for (const req of this.requestList) {
      if (req.phase !== 'accepted') continue;
      const holds = (c: LogCell) =>
        req.index === 0
          ? c.values?.includes(req.value) === true
          : c.index === req.index && c.term === req.term;
      const everywhere = views.every((n) =>
        n.view.log.some((c) => holds(c) && n.view.commit >= c.index),
      );
      if (everywhere && views.length > 0) req.phase = 'committed';
    }
  }

  private guessLeader(): NodeId {
    const up = this.hosts.filter((h) => h.core !== undefined);
    for (const h of up) {
      const view = this.protocol.nodeView(h.core, h.durable);
      if (view.role === 'leader' || view.role === 'primary') return h.id;
    }
    const pick = up[this.clientRng.int(Math.max(1, up.length))] ?? this.hosts[0]!;
    return pick.id;
  }

  private forgetOldRequests(): void {
    while (this.requestList.length > this.settings.requestsMax) {
      const done = this.requestList.findIndex((r) => r.phase !== 'sending');
      this.requestList.splice(done === -1 ? 0 : done, 1);
    }
  }

  private caption(node: NodeId, text: string): void {
    this.captionList.push({ at: this.time, node, text });
    if (this.captionList.length > this.settings.captionsMax) this.captionList.shift();
  }

  private host(id: NodeId): Host<T, Durable> {
    const host = this.hosts[id - 1];
    assert(host !== undefined, `unknown node ${id}`);
    return host;
  }
}

/** The most nodes any playground runs: every node holds every other, so cost grows as n². */
const NODES_LIMIT = 500;

function validate(s: PlaygroundSettings): void {
  assert(Number.isSafeInteger(s.seed) && s.seed >= 0, 'seed must be a non-negative integer');
  assert(
    Number.isInteger(s.nodesMax) && s.nodesMax >= 1 && s.nodesMax <= NODES_LIMIT,
    `nodesMax must be in 1..${NODES_LIMIT}`,
  );
  assert(
    Number.isInteger(s.nodes) && s.nodes >= 1 && s.nodes <= s.nodesMax,
    `nodes must be in 1..${s.nodesMax}`,
  );
  assert(s.latencyBaseMs >= 0 && s.latencyJitterMs >= 0, 'latency must be non-negative');
  assert(s.lossRate >= 0 && s.lossRate < 1, 'lossRate must be in [0, 1)');
  assert(s.flightsMax >= 1 && s.agendaMax >= 16, 'flightsMax and agendaMax too small');
  assert(s.captionsMax >= 1 && s.requestsMax >= 1, 'captionsMax and requestsMax must be >= 1');
  assert(s.attemptsMax >= 1 && s.retryMs > 0, 'attemptsMax must be >= 1 and retryMs > 0');
}
