import { assert } from '../kernel/assert.ts';
import type { Core, CoreTypes } from '../kernel/core.ts';
import type { Envelope, Outgoing } from '../kernel/envelope.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';

/**
 * A small deterministic network for the Paxos cores' own tests (the project simulator in
 * src/sim is the full one). One seed fixes a whole schedule: messages are delivered in
 * random order, dropped, duplicated; nodes crash (possibly in the middle of persisting a
 * batch) and restart from what reached their disk, with a local clock that may step back.
 */
export interface ChaosOptions {
  /** Probability that a delivered message is also kept in flight for a second delivery. */
  readonly duplicateRate: number;
  readonly dropRate: number;
  /** Probability per step that a random node crashes and restarts. */
  readonly crashRate: number;
  /** Probability that a node crashes in the middle of persisting a batch. */
  readonly crashMidPersistRate: number;
  /** How far a restarted node's clock may step back, in ms. */
  readonly clockStepBackMaxMs: number;
}

export const NO_CHAOS: ChaosOptions = {
  duplicateRate: 0,
  dropRate: 0,
  crashRate: 0,
  crashMidPersistRate: 0,
  clockStepBackMaxMs: 0,
};

export interface TestClusterOptions<T extends CoreTypes, D, C extends Core<T>> {
  readonly ids: readonly NodeId[];
  readonly rng: Rng;
  /** A node, fresh or restored from its disk. `incarnation` counts restarts, from 0. */
  create(id: NodeId, durable: D, incarnation: number): C;
  initialDurable(): D;
  applyPersist(durable: D, item: T['persist']): D;
  /** Called whenever a node has no batch out: the moment invariant checks may look at it. */
  observe?(id: NodeId, node: C): void;
  /** Messages in flight at most; further sends are dropped (the network is full). */
  readonly inFlightMax: number;
  /** Largest random time step between actions, in ms. */
  readonly stepMaxMs: number;
}

export class TestCluster<T extends CoreTypes, D, C extends Core<T>> {
  readonly nodes = new Map<NodeId, C>();
  readonly disks = new Map<NodeId, D>();
  readonly deliveries = new Map<NodeId, T['deliver'][]>();
  readonly replies: { node: NodeId; client: ClientId; reply: T['reply'] }[] = [];
  /** Observer events per node, for tests that assert a path was exercised. */
  readonly events: { node: NodeId; event: T['event'] }[] = [];
  private readonly inFlight: Envelope<T['msg']>[] = [];
  /** Client requests on their way to a node: they race with peer messages. */
  private readonly requestsInFlight: { to: NodeId; client: ClientId; req: T['request'] }[] = [];
  private readonly clockOffset = new Map<NodeId, number>();
  private readonly incarnations = new Map<NodeId, number>();
  private readonly localNow = new Map<NodeId, number>();
  chaos: ChaosOptions = NO_CHAOS;
  /** Nodes cut off from everyone: messages to or from them are lost. */
  readonly isolated = new Set<NodeId>();
  time = 1_000_000;
  crashes = 0;

  constructor(private readonly options: TestClusterOptions<T, D, C>) {
    assert(options.inFlightMax >= 1 && options.stepMaxMs >= 1, 'cluster limits must be positive');
    for (const id of options.ids) {
      this.disks.set(id, options.initialDurable());
      this.incarnations.set(id, 0);
      this.clockOffset.set(id, 0);
      this.deliveries.set(id, []);
      this.nodes.set(id, options.create(id, options.initialDurable(), 0));
    }
  }

  node(id: NodeId): C {
    const node = this.nodes.get(id);
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  inFlightCount(): number {
    return this.inFlight.length + this.requestsInFlight.length;
  }

  /** A client's request sent over the network: delivered later, in random order, never lost. */
  sendRequest(to: NodeId, client: ClientId, req: T['request']): void {
    this.requestsInFlight.push({ to, client, req });
  }

  /** A node's local clock: global time plus its offset, never decreasing within a life. */
  nowAt(id: NodeId): number {
    const now = Math.max(this.time + (this.clockOffset.get(id) ?? 0), this.localNow.get(id) ?? 0);
    this.localNow.set(id, now);
    return now;
  }

  request(id: NodeId, client: ClientId, req: T['request']): void {
    this.node(id).request(this.nowAt(id), client, req);
    this.drain(id);
  }

  /** Runs `action` on a node with its current local time, then carries out its output. */
  act(id: NodeId, action: (node: C, now: number) => void): void {
    action(this.node(id), this.nowAt(id));
    this.drain(id);
  }

  /** One random action: deliver (or drop) a message, let time pass, or crash a node. */
  step(): void {
    const { rng } = this.options;
    if (rng.chance(this.chaos.crashRate)) {
      this.crash(rng.pick(this.options.ids));
      return;
    }
    const pending = this.inFlight.length + this.requestsInFlight.length;
    if (pending > 0 && rng.chance(0.8)) {
      const pick = rng.int(pending);
      if (pick < this.requestsInFlight.length) this.deliverRequest(pick);
      else this.deliverOne();
      return;
    }
    this.passTime();
  }

  /** Runs `step` until `done` holds or `stepsMax` ran; returns whether `done` held. */
  runUntil(done: () => boolean, stepsMax: number): boolean {
    for (let i = 0; i < stepsMax; i++) {
      if (done()) return true;
      this.step();
    }
    return done();
  }

  crash(id: NodeId): void {
    this.crashes++;
    const incarnation = (this.incarnations.get(id) ?? 0) + 1;
    this.incarnations.set(id, incarnation);
    const back = this.options.rng.int(this.chaos.clockStepBackMaxMs + 1);
    this.clockOffset.set(id, (this.clockOffset.get(id) ?? 0) - back);
    this.localNow.delete(id);
    const disk = this.disks.get(id);
    assert(disk !== undefined, `no disk for node ${id}`);
    this.nodes.set(id, this.options.create(id, disk, incarnation));
    this.drain(id);
  }

  /**
   * Lockstep: delivers every message now in flight (their replies wait for the next call),
   * so each call is one message delay. Returns how many were delivered.
   */
  deliverAll(): number {
    const batch = this.inFlight.splice(0, this.inFlight.length);
    for (const env of batch) {
      this.node(env.to).receive(this.nowAt(env.to), env.from, env.msg);
      this.drain(env.to);
    }
    return batch.length;
  }

  /** Lets time pass until every node's deadline has run, in lockstep mode. */
  tickAll(ms: number): void {
    this.time += ms;
    for (const id of this.options.ids) {
      const node = this.node(id);
      const now = this.nowAt(id);
      if (node.deadline() <= now) {
        node.tick(now);
        this.drain(id);
      }
    }
  }

  private deliverRequest(index: number): void {
    const [r] = this.requestsInFlight.splice(index, 1);
    if (r !== undefined) this.request(r.to, r.client, r.req);
  }

  private deliverOne(): void {
    const { rng } = this.options;
    const index = rng.int(this.inFlight.length);
    const env = this.inFlight[index] as Envelope<T['msg']>;
    const keep = rng.chance(this.chaos.duplicateRate);
    if (!keep) {
      this.inFlight[index] = this.inFlight[this.inFlight.length - 1] as Envelope<T['msg']>;
      this.inFlight.pop();
    }
    if (rng.chance(this.chaos.dropRate)) return;
    if (this.isolated.has(env.to) || this.isolated.has(env.from)) return;
    this.node(env.to).receive(this.nowAt(env.to), env.from, env.msg);
    this.drain(env.to);
  }

  private passTime(): void {
    this.tickAll(1 + this.options.rng.int(this.options.stepMaxMs));
  }

  /** Carries out a node's batches; may crash it between two persist items. */
  private drain(id: NodeId): void {
    for (;;) {
      const node = this.node(id);
      const rd = node.ready();
      if (rd === undefined) break;
      const crashAt = this.options.rng.chance(this.chaos.crashMidPersistRate)
        ? this.options.rng.int(rd.persist.length + 1)
        : -1;
      let disk = this.disks.get(id) as D;
      this.enqueue(id, rd.early);
      for (let i = 0; i < rd.persist.length; i++) {
        if (i === crashAt) break;
        disk = this.options.applyPersist(disk, rd.persist[i]);
      }
      this.disks.set(id, disk);
      if (crashAt >= 0) {
        this.crash(id);
        return;
      }
      this.enqueue(id, rd.messages);
      for (const r of rd.replies) this.replies.push({ node: id, client: r.client, reply: r.reply });
      this.deliveries.get(id)?.push(...rd.deliver);
      for (const event of rd.events) this.events.push({ node: id, event });
      node.advance();
    }
    this.options.observe?.(id, this.node(id));
  }

  /** Puts a node's outgoing messages on the wire, unless either end is cut off or it is full. */
  private enqueue(id: NodeId, messages: readonly Outgoing<T['msg']>[]): void {
    for (const m of messages) {
      if (this.isolated.has(id) || this.isolated.has(m.to)) continue;
      if (this.inFlight.length < this.options.inFlightMax) {
        this.inFlight.push({ from: id, to: m.to, msg: m.msg });
      }
    }
  }
}
