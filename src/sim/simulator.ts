import type { HistoryEvent, Json } from '../check/history.ts';
import { assert, InvariantError, unreachable } from '../kernel/assert.ts';
import type { CoreTypes, Ready, Reply } from '../kernel/core.ts';
import type { Outgoing } from '../kernel/envelope.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import { type FaultAction, type NemesisState, RandomNemesis } from './nemesis.ts';
import { dropReasons, Network } from './network.ts';
import { SimNode } from './node.ts';
import { type SimOptions, validateOptions } from './options.ts';
import type {
  ClusterView,
  FaultControl,
  Monitor,
  SimProtocol,
  Workload,
  WorkloadIo,
} from './protocol.ts';
import { EventQueue } from './queue.ts';
import { QueueKind } from './queue-kinds.ts';
import { Tracer, toJson } from './trace.ts';

export interface SimStats {
  /** Messages handed to a running node or client. */
  delivered: number;
  /** Messages that entered the network (duplicates not counted twice). */
  sent: number;
  dropped: number;
  /** Events taken off the queue. */
  events: number;
  /** Global simulated time at the end, ms. */
  simulatedMs: number;
  /** When the safety phase ended and the cluster was healed. */
  healedAtMs: number;
}

export type Verdict = 'pass' | 'violation' | 'unknown';

export interface Finding {
  readonly verdict: Verdict;
  readonly message: string;
}

/** A message a slow node has received and will handle later. */
interface SlowInput {
  readonly from: number;
  readonly id: number;
  readonly msg: unknown;
}

const SAFETY = 0;
const LIVENESS = 1;
const FINISHED = 2;

/**
 * The discrete-event engine: hosts one pure core per node through the kernel Core
 * contract, moves messages through the network model, runs the nemesis and the workload,
 * and stops at the first invariant violation. `run()` returns the finding; `runSimulation`
 * (run.ts) wraps it with end-of-run checks and the replay command.
 */
export class Simulator<T extends CoreTypes, Durable> {
  readonly stats: SimStats = {
    delivered: 0,
    sent: 0,
    dropped: 0,
    events: 0,
    simulatedMs: 0,
    healedAtMs: 0,
  };
  readonly history: HistoryEvent[] = [];
  readonly view: ClusterView<T, Durable>;

  private readonly queue: EventQueue;
  private readonly network: Network;
  private readonly nodes: SimNode<T, Durable>[] = [];
  private readonly members: NodeId[];
  private readonly clientIds: ClientId[];
  private readonly nodeCount: number;
  private readonly endpoints: number;
  private readonly monitor: Monitor<T, Durable>;
  private readonly workload: Workload<T>;
  private readonly nemesis: RandomNemesis;
  private readonly diskRng: Rng;
  private readonly nemesisRng: Rng;
  /** Processing delays of slow nodes; forked last, so no other stream changes. */
  private readonly slowRng: Rng;
  private readonly tracer: Tracer | undefined;
  private readonly describe: (msg: unknown) => Json;
  private now = 0;
  private phase = SAFETY;
  private violation: string | undefined = undefined;
  private messageSeq = 0;
  /** Scripted actions not yet carried out; the safety phase waits for all of them. */
  private scenarioPending = 0;
  private sameInstantSteps = 0;

  constructor(
    private readonly protocol: SimProtocol<T, Durable>,
    private readonly options: SimOptions,
  ) {
    validateOptions(options);
    const root = Rng.fromSeed(options.seed);
    const networkRng = root.fork();
    this.nemesisRng = root.fork();
    this.diskRng = root.fork();
    const workloadRng = root.fork();
    const clockRng = root.fork();
    const nodesRng = root.fork();
    this.slowRng = root.fork();
    this.nodeCount = options.nodes;
    this.members = Array.from({ length: options.nodes }, (_, i) => i + 1);
    this.clientIds = Array.from({ length: options.clients }, (_, i) => i + 1);
    this.endpoints = options.nodes + options.clients;
    this.queue = new EventQueue(options.eventsMax);
    this.network = new Network(this.endpoints, this.nodeCount, options.latency, networkRng);
    this.network.clientLoss = options.clientLoss;
    const skewed = options.faults.includes('skew');
    for (const id of this.members) {
      const disk = protocol.emptyDurable({ id, members: this.members });
      const node = new SimNode<T, Durable>(id, id - 1, disk, nodesRng.fork());
      if (skewed) node.setClock(0, clockRng.next() * options.skewMaxMs, 1);
      this.nodes.push(node);
    }
    this.workload = protocol.createWorkload({
      members: this.members,
      clients: this.clientIds,
      ops: options.ops,
      rng: workloadRng,
    });
    this.nemesis = new RandomNemesis(
      this.members,
      options.faults,
      options.intensity,
      this.nemesisRng,
    );
    this.tracer = options.trace === undefined ? undefined : new Tracer(options.trace);
    const describeMessage = protocol.describeMessage?.bind(protocol);
    this.describe = describeMessage ? (m) => describeMessage(m as T['msg']) : toJson;
    this.view = this.makeView();
    this.monitor = protocol.createMonitor(this.view);
  }

  /** Runs to the end (or the first violation) and returns what was found. */
  run(): Finding {
    try {
      this.boot();
      this.loop();
    } catch (err) {
      // A core that breaks an assertion or throws is a finding like any violation, and
      // gets the same replay command.
      if (!(err instanceof Error)) throw err;
      const what = err instanceof InvariantError ? 'invariant broken' : `${err.name} thrown`;
      this.violation ??= `${what} at ${this.now.toFixed(3)}ms: ${err.message}`;
    }
    this.stats.simulatedMs = this.now;
    const finding: Finding =
      this.violation !== undefined
        ? { verdict: 'violation', message: this.violation }
        : this.finalChecks();
    this.tracer?.end(this.now, finding.verdict, finding.message);
    return finding;
  }

  private boot(): void {
    this.tracer?.start(
      this.protocol.name,
      this.options.seed,
      this.members,
      this.clientIds,
      toJson({
        ops: this.options.ops,
        faults: this.options.faults,
        intensity: this.options.intensity,
      }),
    );
    for (const node of this.nodes) this.startProcess(node);
    this.workload.start(this.makeIo());
    const scenario = this.options.scenario;
    if (scenario !== undefined) {
      for (const step of scenario) {
        this.queue.push(step.atMs, QueueKind.nemesis, 0, 0, step.action);
        this.scenarioPending++;
      }
    } else if (this.nemesis.active) {
      this.queue.push(this.nemesis.nextDelayMs(), QueueKind.nemesis, 0, 0, undefined);
    }
  }

  private loop(): void {
    const queue = this.queue;
    const safetyEnd = this.options.safetyMsMax;
    let livenessEnd = Number.POSITIVE_INFINITY;
    while (this.violation === undefined) {
      if (this.phase === SAFETY && this.safetyDone()) {
        livenessEnd = this.heal(this.now);
      } else if (this.phase === LIVENESS && this.workload.done()) {
        this.phase = FINISHED;
        return;
      }
      const next = queue.peekTime();
      if (this.phase === SAFETY && next > safetyEnd) {
        livenessEnd = this.heal(safetyEnd);
        continue;
      }
      if (this.phase === LIVENESS && next > livenessEnd) {
        this.now = livenessEnd;
        this.violation = `liveness: not done ${this.options.livenessMs}ms after healing: ${this.workload.describePending()}`;
        return;
      }
      queue.pop();
      this.stats.events++;
      this.advanceClock(queue.time);
      this.dispatch(queue.kind, queue.a, queue.b, queue.payload);
    }
  }

  private advanceClock(time: number): void {
    if (time === this.now) {
      if (++this.sameInstantSteps > this.options.stepsPerInstantMax) {
        this.violation = `livelock: more than ${this.options.stepsPerInstantMax} steps at ${time}ms`;
      }
      return;
    }
    assert(time > this.now, 'simulated time runs forward');
    this.now = time;
    this.sameInstantSteps = 0;
  }

  private safetyDone(): boolean {
    return this.scenarioPending === 0 && this.workload.exhausted();
  }

  private dispatch(kind: number, a: number, b: number, payload: unknown): void {
    switch (kind) {
      case QueueKind.deliver:
        this.onDeliver(a, b, payload);
        return;
      case QueueKind.tick:
        this.onTick(a, b);
        return;
      case QueueKind.fsync:
        this.onFsync(a, b);
        return;
      case QueueKind.clientTimer:
        this.workload.onTimer(a, b);
        return;
      case QueueKind.nemesis:
        this.onNemesis(payload as FaultAction | undefined);
        return;
      case QueueKind.slowInput:
        this.onSlowInput(a, b, payload as SlowInput | undefined);
        return;
      default:
        assert(false, `unknown event kind ${kind}`);
    }
  }

  // --- network --------------------------------------------------------------------------

  private endpointName(ep: number): string {
    return ep < this.nodeCount ? `n${ep + 1}` : `c${ep - this.nodeCount + 1}`;
  }

  /** Puts `msg` on the wire from endpoint `from` to endpoint `to`. */
  private transmit(from: number, to: number, msg: unknown): void {
    const id = ++this.messageSeq;
    this.stats.sent++;
    const at = this.network.route(from, to, this.now);
    const tracer = this.tracer;
    if (tracer !== undefined) {
      tracer.send(this.now, id, this.endpointName(from), this.endpointName(to), this.describe(msg));
    }
    if (at < 0) {
      this.stats.dropped++;
      if (tracer !== undefined) this.traceDrop(id, from, to, dropReasons[at] ?? 'unknown');
      return;
    }
    const tag = id * this.endpoints + from;
    this.queue.push(at, QueueKind.deliver, to, tag, msg);
    if (this.network.duplicate()) {
      const again = this.network.route(from, to, this.now);
      if (again >= 0) {
        tracer?.dup(this.now, id);
        this.queue.push(again, QueueKind.deliver, to, tag, msg);
      }
    }
  }

  private traceDrop(id: number, from: number, to: number, reason: string): void {
    this.tracer?.drop(this.now, id, this.endpointName(from), this.endpointName(to), reason);
  }

  private onDeliver(to: number, tag: number, msg: unknown): void {
    const from = tag % this.endpoints;
    const id = (tag - from) / this.endpoints;
    if (to >= this.nodeCount) {
      this.stats.delivered++;
      this.tracer?.deliver(this.now, id, this.endpointName(from), this.endpointName(to));
      this.workload.onReply(to - this.nodeCount + 1, from + 1, msg as T['reply']);
      return;
    }
    const node = this.nodes[to]!;
    if (node.core === undefined) {
      this.stats.dropped++;
      if (this.tracer !== undefined) this.traceDrop(id, from, to, 'down');
      return;
    }
    if (node.paused) {
      if (node.inboxMsg.length >= this.options.pausedInboxMax) {
        this.stats.dropped++;
        if (this.tracer !== undefined) this.traceDrop(id, from, to, 'pause-overflow');
        return;
      }
      node.inboxFrom.push(from);
      node.inboxId.push(id);
      node.inboxMsg.push(msg);
      return;
    }
    if (node.slowMs > 0) {
      const input: SlowInput = { from, id, msg };
      this.queue.push(this.slowAt(node), QueueKind.slowInput, to, node.incarnation, input);
      return;
    }
    this.stats.delivered++;
    this.tracer?.deliver(this.now, id, this.endpointName(from), this.endpointName(to));
    this.input(node, from, msg);
  }

  private slowAt(node: SimNode<T, Durable>): number {
    return this.now + this.slowRng.exponential(node.slowMs);
  }

  /** A slow node gets round to an input: a message (buffered if it is paused now) or its tick. */
  private onSlowInput(index: number, incarnation: number, input: SlowInput | undefined): void {
    const node = this.nodes[index]!;
    if (node.incarnation !== incarnation || node.core === undefined) return;
    if (input === undefined) {
      node.slowTickPending = false;
      if (node.paused) return; // resume() reschedules the tick
      node.core.tick(node.localTime(this.now));
      this.afterStep(node);
      return;
    }
    if (node.paused) {
      node.inboxFrom.push(input.from);
      node.inboxId.push(input.id);
      node.inboxMsg.push(input.msg);
      return;
    }
    this.stats.delivered++;
    this.tracer?.deliver(this.now, input.id, this.endpointName(input.from), `n${node.id}`);
    this.input(node, input.from, input.msg);
  }

  /** Hands a message from endpoint `from` to the node's core: a peer message or a request. */
  private input(node: SimNode<T, Durable>, from: number, msg: unknown): void {
    const core = node.core!;
    const local = node.localTime(this.now);
    if (from < this.nodeCount) core.receive(local, from + 1, msg as T['msg']);
    else core.request(local, from - this.nodeCount + 1, msg as T['request']);
    this.afterStep(node);
  }

  // --- hosting the core -----------------------------------------------------------------

  private startProcess(node: SimNode<T, Durable>): void {
    assert(node.core === undefined, `node ${node.id} is already running`);
    const fresh = node.incarnation === 0;
    node.core = this.protocol.createCore({
      id: node.id,
      members: this.members,
      durable: fresh ? undefined : node.durable,
      rng: node.rng.fork(),
      now: node.localTime(this.now),
    });
    assert(node.core.id === node.id, `core for node ${node.id} reports id ${node.core.id}`);
    this.afterStep(node);
  }

  /** After any input: start the core's output, keep its timer scheduled, check invariants. */
  private afterStep(node: SimNode<T, Durable>): void {
    this.pump(node);
    this.scheduleTick(node);
    const check = this.monitor.afterStep;
    if (check !== undefined && this.violation === undefined) {
      const v = check.call(this.monitor, this.view, node.id);
      if (v !== undefined) this.violation = v;
    }
  }

  /** Takes ready batches: those without persist items are carried out at once. */
  private pump(node: SimNode<T, Durable>): void {
    const core = node.core;
    if (core === undefined || node.paused) return;
    while (node.batch === undefined) {
      const rd = core.ready();
      if (rd === undefined) return;
      if (rd.persist.length > 0) {
        // What may leave before the write leaves now: the disk and the network overlap.
        this.transmitAll(node.index, rd.early);
        this.answerAll(node.index, rd.earlyReplies);
        node.batch = rd;
        const o = this.options;
        const delay = o.fsyncMinMs + this.diskRng.next() * (o.fsyncMaxMs - o.fsyncMinMs);
        this.queue.push(this.now + delay, QueueKind.fsync, node.index, node.incarnation, undefined);
        return;
      }
      this.carryOut(node, rd);
      core.advance();
    }
  }

  private onFsync(index: number, incarnation: number): void {
    const node = this.nodes[index]!;
    if (node.incarnation !== incarnation || node.batch === undefined) return;
    if (node.paused) {
      node.fsyncDue = true;
      return;
    }
    this.completeFsync(node);
    this.afterStep(node);
  }

  /** The disk acknowledged the whole batch: make it durable, then carry it out. */
  private completeFsync(node: SimNode<T, Durable>): void {
    const rd = node.batch!;
    for (const item of rd.persist) node.durable = this.protocol.applyPersist(node.durable, item);
    this.tracer?.persist(this.now, node.id, rd.persist.length);
    node.batch = undefined;
    node.fsyncDue = false;
    this.carryOut(node, rd);
    node.core!.advance();
  }

  /** Sends a batch's messages; `early` ones (and early replies) went when the batch was cut, unless it had nothing to persist. */
  private carryOut(node: SimNode<T, Durable>, rd: Ready<T>): void {
    const from = node.index;
    if (rd.persist.length === 0) {
      this.transmitAll(from, rd.early);
      this.answerAll(from, rd.earlyReplies);
    }
    this.transmitAll(from, rd.messages);
    this.answerAll(from, rd.replies);
    if (rd.deliver.length > 0) this.observeDeliveries(node.id, rd.deliver);
    if (rd.events.length > 0) this.observeEvents(node.id, rd.events);
  }

  private answerAll(from: number, replies: readonly Reply<T['reply']>[]): void {
    for (const r of replies) {
      // Client 0 is the simulator's admin client (protocol faults); nobody reads its replies.
      if (r.client >= 1 && r.client <= this.clientIds.length) {
        this.transmit(from, this.nodeCount + r.client - 1, r.reply);
      }
    }
  }

  private transmitAll(from: number, messages: readonly Outgoing<T['msg']>[]): void {
    const nodes = this.nodeCount;
    for (const m of messages) {
      const to = m.to;
      // Checked before building the message: this runs once per message.
      if (!(to >= 1 && to <= nodes && to !== from + 1)) {
        assert(false, `node ${from + 1} sent to unknown or own id ${to}`);
      }
      this.transmit(from, to - 1, m.msg);
    }
  }

  private observeDeliveries(id: NodeId, items: readonly T['deliver'][]): void {
    const onDeliver = this.monitor.onDeliver;
    for (const item of items) {
      this.tracer?.apply(this.now, id, toJson(item));
      if (onDeliver === undefined || this.violation !== undefined) continue;
      const v = onDeliver.call(this.monitor, id, item, this.now);
      if (v !== undefined) this.violation = v;
    }
  }

  private observeEvents(id: NodeId, events: readonly T['event'][]): void {
    const onEvent = this.monitor.onEvent;
    for (const event of events) {
      this.tracer?.event(this.now, id, toJson(event));
      if (onEvent === undefined || this.violation !== undefined) continue;
      const v = onEvent.call(this.monitor, id, event, this.now);
      if (v !== undefined) this.violation = v;
    }
  }

  /**
   * Keeps one tick event per node at the core's deadline. An earlier event already
   * scheduled is kept (an early tick is harmless and reschedules), so most inputs push
   * nothing onto the queue.
   */
  private scheduleTick(node: SimNode<T, Durable>): void {
    const core = node.core;
    if (core === undefined || node.paused || node.slowTickPending) return;
    const deadline = core.deadline();
    if (deadline === Number.POSITIVE_INFINITY) return;
    let at = node.globalTime(deadline);
    if (at < this.now) at = this.now;
    if (at >= node.tickAt) return;
    node.tickAt = at;
    node.tickLocal = deadline;
    this.queue.push(at, QueueKind.tick, node.index, ++node.tickGen, undefined);
  }

  private onTick(index: number, gen: number): void {
    const node = this.nodes[index]!;
    if (gen !== node.tickGen) return;
    node.tickAt = Number.POSITIVE_INFINITY;
    const core = node.core;
    if (core === undefined || node.paused) return;
    if (node.slowMs > 0) {
      node.slowTickPending = true;
      this.queue.push(this.slowAt(node), QueueKind.slowInput, index, node.incarnation, undefined);
      return;
    }
    let local = node.localTime(this.now);
    // Converting the deadline to global time and back may land a hair before it.
    if (local < node.tickLocal && node.tickLocal - local < 1e-6) {
      local = node.tickLocal;
      node.lastLocal = local;
    }
    core.tick(local);
    this.afterStep(node);
  }

  /** Invalidates the node's tick event, so the next `scheduleTick` pushes a fresh one. */
  private resetTick(node: SimNode<T, Durable>): void {
    node.tickGen++;
    node.tickAt = Number.POSITIVE_INFINITY;
  }

  // --- faults ---------------------------------------------------------------------------

  private onNemesis(scripted: FaultAction | undefined): void {
    if (scripted !== undefined) {
      this.scenarioPending--;
      if (this.phase === SAFETY) this.apply(scripted);
      return;
    }
    if (this.phase !== SAFETY) return;
    this.apply(this.nemesis.next(this.nemesisState));
    this.queue.push(this.now + this.nemesis.nextDelayMs(), QueueKind.nemesis, 0, 0, undefined);
  }

  private readonly nemesisState: NemesisState = {
    isUp: (id) => this.node(id).core !== undefined,
    isPaused: (id) => this.node(id).paused,
    networkFaulty: () => this.network.isFaulty(),
  };

  private node(id: NodeId): SimNode<T, Durable> {
    const node = this.nodes[id - 1];
    if (node === undefined) assert(false, `unknown node ${id}`);
    return node;
  }

  /** Carries out one fault action (from the nemesis, a scenario, or the final heal). */
  apply(action: FaultAction): void {
    if (action.type === 'protocol') {
      this.applyProtocolFault(action.name);
      return;
    }
    this.tracer?.fault(this.now, toJson(action));
    const net = this.network;
    switch (action.type) {
      case 'partition':
        net.partition(action.groups.map((g) => g.map((id) => this.node(id).index)));
        return;
      case 'cut':
        if (action.from !== action.to)
          net.cut(this.node(action.from).index, this.node(action.to).index);
        return;
      case 'clog':
        if (action.from === action.to) return;
        net.clog(this.node(action.from).index, this.node(action.to).index, action.delayMs);
        return;
      case 'heal':
        net.heal();
        return;
      case 'crash':
        this.crash(this.node(action.node));
        return;
      case 'restart':
        if (this.node(action.node).core === undefined) this.startProcess(this.node(action.node));
        return;
      case 'pause':
        if (this.node(action.node).core !== undefined) this.node(action.node).paused = true;
        return;
      case 'resume':
        this.resume(this.node(action.node));
        return;
      case 'loss':
        net.faults.loss = action.rate;
        return;
      case 'duplicate':
        net.faults.duplicate = action.rate;
        return;
      case 'reorder':
        net.faults.reorder = action.rate;
        net.faults.reorderMaxMs = action.maxMs;
        return;
      case 'clock':
        this.setClock(this.node(action.node), action.jumpMs, action.rate);
        return;
      case 'slow':
        assert(action.delayMs >= 0, `slow delayMs must be >= 0, got ${action.delayMs}`);
        this.node(action.node).slowMs = action.delayMs;
        return;
      default:
        unreachable(action, 'fault action');
    }
  }

  private applyProtocolFault(name: string): void {
    const fault = this.protocol.faults?.find((f) => f.name === name);
    assert(fault !== undefined, `protocol ${this.protocol.name} has no fault '${name}'`);
    const control: FaultControl<T, Durable> = {
      view: this.view,
      request: (id, req) => {
        const node = this.node(id);
        if (node.core === undefined || node.paused) return;
        node.core.request(node.localTime(this.now), 0, req);
        this.afterStep(node);
      },
    };
    const described = fault.apply(control, this.nemesisRng);
    if (described !== undefined)
      this.tracer?.fault(this.now, { type: 'protocol', name, detail: described });
  }

  /**
   * The process dies: the core and its unacknowledged batch are gone. Of the batch being
   * fsynced, a random prefix reached the disk: that is all "as far as the disk
   * acknowledged" guarantees, and the core must cope with any such prefix.
   */
  private crash(node: SimNode<T, Durable>): void {
    if (node.core === undefined) return;
    const batch = node.batch;
    if (batch !== undefined) {
      const of = batch.persist.length;
      const kept = this.diskRng.int(of + 1);
      for (let i = 0; i < kept; i++) {
        node.durable = this.protocol.applyPersist(node.durable, batch.persist[i]);
      }
      this.tracer?.torn(this.now, node.id, kept, of);
    }
    node.core = undefined;
    node.batch = undefined;
    node.fsyncDue = false;
    node.paused = false;
    node.slowTickPending = false;
    node.incarnation++;
    node.clearInbox();
    this.resetTick(node);
    this.monitor.onCrash?.(node.id, this.now);
  }

  private resume(node: SimNode<T, Durable>): void {
    if (!node.paused) return;
    node.paused = false;
    if (node.core === undefined) return;
    if (node.fsyncDue) this.completeFsync(node);
    const froms = node.inboxFrom.splice(0);
    const ids = node.inboxId.splice(0);
    const msgs = node.inboxMsg.splice(0);
    for (let i = 0; i < msgs.length && node.core !== undefined && !node.paused; i++) {
      const from = froms[i]!;
      this.stats.delivered++;
      this.tracer?.deliver(this.now, ids[i]!, this.endpointName(from), `n${node.id}`);
      this.input(node, from, msgs[i]);
    }
    this.resetTick(node);
    this.afterStep(node);
  }

  private setClock(node: SimNode<T, Durable>, jumpMs: number, rate: number): void {
    assert(rate > 0, `clock rate must be positive, got ${rate}`);
    node.setClock(this.now, jumpMs, rate);
    this.resetTick(node);
    this.scheduleTick(node);
  }

  /** Ends the safety phase: repairs everything and starts the liveness bound. */
  private heal(at: number): number {
    if (at > this.now) this.now = at;
    this.phase = LIVENESS;
    this.stats.healedAtMs = this.now;
    this.tracer?.phase(this.now, 'liveness');
    this.apply({ type: 'heal' });
    for (const node of this.nodes) {
      if (node.paused) this.apply({ type: 'resume', node: node.id });
      if (node.core === undefined && this.options.restartAtHeal !== false) {
        this.apply({ type: 'restart', node: node.id });
      }
      if (node.rate !== 1) this.apply({ type: 'clock', node: node.id, jumpMs: 0, rate: 1 });
      if (node.slowMs > 0) this.apply({ type: 'slow', node: node.id, delayMs: 0 });
    }
    this.workload.heal();
    return this.now + this.options.livenessMs;
  }

  private finalChecks(): Finding {
    const atEnd = this.monitor.atEnd;
    if (atEnd !== undefined) {
      const v = atEnd.call(this.monitor, this.view);
      if (v !== undefined) return { verdict: 'violation', message: v };
    }
    const outcome = this.workload.check();
    switch (outcome.verdict) {
      case 'pass':
        return { verdict: 'pass', message: outcome.summary };
      case 'violation':
        return { verdict: 'violation', message: outcome.message };
      case 'unknown':
        return { verdict: 'unknown', message: outcome.reason };
      default:
        return unreachable(outcome, 'check outcome');
    }
  }

  // --- views for plugins ----------------------------------------------------------------

  private makeView(): ClusterView<T, Durable> {
    return {
      members: this.members,
      now: () => this.now,
      core: (id) => this.node(id).core,
      durable: (id) => this.node(id).durable,
      isUp: (id) => this.node(id).core !== undefined,
      isPaused: (id) => this.node(id).paused,
      faults: this.options.faults,
    };
  }

  private makeIo(): WorkloadIo<T> {
    const nodes = this.nodeCount;
    return {
      now: () => this.now,
      send: (client, node, req) => {
        if (!(client >= 1 && client <= this.clientIds.length && node >= 1 && node <= nodes)) {
          assert(false, `client ${client} sends to node ${node}: one of them is unknown`);
        }
        this.transmit(nodes + client - 1, node - 1, req);
      },
      setTimer: (client, at, token) => {
        this.queue.push(Math.max(at, this.now), QueueKind.clientTimer, client, token, undefined);
      },
      record: (event) => {
        this.history.push(event);
        this.tracer?.history(event);
      },
    };
  }
}
