import { assert } from '../kernel/assert.ts';
import type { Reply } from '../kernel/core.ts';
import type { Envelope } from '../kernel/envelope.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import { defaultRaftOptions, type RaftOptions } from './config.ts';
import { RaftCore } from './core.ts';
import {
  applyPersist,
  cloneDurableState,
  initialDurableState,
  type RaftDurableState,
} from './durable.ts';
import { type RaftNodeView, RaftSafetyChecker } from './invariants.ts';
import { makeConfig } from './membership.ts';
import type {
  RaftConfig,
  RaftDeliver,
  RaftEvent,
  RaftMsg,
  RaftReply,
  RaftRequest,
} from './types.ts';

/** One node of the test network: its core, its simulated disk and what it handed out. */
export interface TestNode<C> {
  core: RaftCore<C>;
  readonly disk: RaftDurableState<C>;
  alive: boolean;
  /** Everything delivered for applying since the last (re)start, in order. */
  delivered: RaftDeliver<C>[];
  replies: Reply<RaftReply>[];
  events: RaftEvent[];
}

export interface NetworkOptions<C> {
  readonly ids?: readonly NodeId[];
  readonly seed?: number;
  readonly raft?: Partial<RaftOptions<C>>;
  /** Initial configuration; defaults to all `ids` as voters. */
  readonly config?: RaftConfig;
  /** Run the safety checker after every step and throw on a violation (default true). */
  readonly check?: boolean;
}

type Msg<C> = RaftMsg<C>;
type Filter<C> = (e: Envelope<Msg<C>>) => boolean;

const STABILIZE_STEPS_MAX = 100_000;

/**
 * A tiny deterministic network of `RaftCore`s for scenario tests, in the spirit of etcd's
 * rafttest: one shared clock that only moves when told, messages held in flight until a test
 * delivers, drops or duplicates them, partitions, and crash/restart from the simulated disk
 * (including a crash that keeps only a prefix of a batch's writes). Every step runs the
 * `RaftSafetyChecker`.
 */
export class Network<C> {
  now = 0;
  readonly nodes = new Map<NodeId, TestNode<C>>();
  inFlight: Envelope<Msg<C>>[] = [];
  readonly checker = new RaftSafetyChecker();
  readonly opts: RaftOptions<C>;
  private readonly rng: Rng;
  private readonly blocked = new Set<string>();
  private readonly check: boolean;
  private nextClient: ClientId = 1;
  private nextRequestId = 1;

  constructor(options: NetworkOptions<C> = {}) {
    const ids = options.ids ?? [1, 2, 3];
    this.rng = Rng.fromSeed(options.seed ?? 1);
    this.opts = { ...defaultRaftOptions<C>(), ...options.raft };
    this.check = options.check ?? true;
    const config = options.config ?? makeConfig(ids);
    for (const id of ids) this.addNode(id, config);
  }

  /** A new node with its own empty disk (pass an empty config for a node joining later). */
  addNode(id: NodeId, config: RaftConfig): TestNode<C> {
    assert(!this.nodes.has(id), `node ${id} exists`);
    const disk = initialDurableState<C>(config);
    const node: TestNode<C> = {
      core: RaftCore.restore(id, cloneDurableState(disk), this.opts, this.rng.fork()),
      disk,
      alive: true,
      delivered: [],
      replies: [],
      events: [],
    };
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): TestNode<C> {
    const n = this.nodes.get(id);
    assert(n !== undefined, `no node ${id}`);
    return n;
  }

  core(id: NodeId): RaftCore<C> {
    return this.node(id).core;
  }

  /** The live leader with the highest term, if any. */
  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const [id, n] of this.nodes) {
      const s = n.core.status();
      if (n.alive && s.role === 'leader' && (best === undefined || s.term > best.term))
        best = { id, term: s.term };
    }
    return best?.id;
  }

  views(): RaftNodeView<C>[] {
    return [...this.nodes.values()]
      .filter((n) => n.alive)
      .map((n) => ({ status: n.core.status(), log: n.core.log() }));
  }

  // ---------------------------------------------------------------------------------------
  // Carrying out batches

  /** Hand out and carry out every pending batch of node `id`, the way a host would. */
  flush(id: NodeId): void {
    const n = this.node(id);
    if (!n.alive) return;
    for (let rd = n.core.ready(); rd !== undefined; rd = n.core.ready()) {
      for (const m of rd.early) this.send({ from: id, to: m.to, msg: m.msg });
      for (const item of rd.persist) applyPersist(n.disk, item);
      for (const m of rd.messages) this.send({ from: id, to: m.to, msg: m.msg });
      for (const d of rd.deliver) {
        n.delivered.push(d);
        this.report(this.checker.delivered(id, d));
      }
      n.replies.push(...rd.replies);
      n.events.push(...rd.events);
      n.core.advance();
    }
    this.runChecks();
  }

  flushAll(): void {
    for (const id of this.nodes.keys()) this.flush(id);
  }

  private send(e: Envelope<Msg<C>>): void {
    if (!this.linked(e.from, e.to)) return;
    this.inFlight.push(e);
  }

  private linked(from: NodeId, to: NodeId): boolean {
    return !this.blocked.has(`${from}>${to}`);
  }

  private report(violations: string[]): void {
    if (this.check && violations.length > 0) throw new Error(violations.join('\n'));
  }

  private runChecks(): void {
    if (this.check) this.report(this.checker.observe(this.views()));
  }

  // ---------------------------------------------------------------------------------------
  // Messages

  /** Deliver the in-flight message at position `k` (to a live, reachable node). */
  deliverAt(k: number): void {
    const [e] = this.inFlight.splice(k, 1);
    assert(e !== undefined, `no in-flight message ${k}`);
    const to = this.nodes.get(e.to);
    if (to === undefined || !to.alive || !this.linked(e.from, e.to)) return;
    to.core.receive(this.now, e.from, e.msg);
    this.flush(e.to);
  }

  /** Deliver the messages in flight now that pass `filter` (not those they cause); returns how many. */
  deliver(filter: Filter<C> = () => true): number {
    const batch = this.inFlight.filter(filter);
    this.inFlight = this.inFlight.filter((e) => !filter(e));
    for (const e of batch) {
      this.inFlight.unshift(e);
      this.deliverAt(0);
    }
    return batch.length;
  }

  /** Deliver until nothing is in flight (time does not move). */
  stabilize(): void {
    for (let i = 0; i < STABILIZE_STEPS_MAX; i++) {
      this.flushAll();
      if (this.inFlight.length === 0) return;
      this.deliver();
    }
    assert(false, 'network did not stabilize');
  }

  /** Remove in-flight messages that pass `filter`; returns how many. */
  drop(filter: Filter<C> = () => true): number {
    const before = this.inFlight.length;
    this.inFlight = this.inFlight.filter((e) => !filter(e));
    return before - this.inFlight.length;
  }

  /** Copy in-flight messages that pass `filter` (the network duplicates them). */
  duplicate(filter: Filter<C> = () => true): number {
    const copies = this.inFlight.filter(filter);
    this.inFlight.push(...copies);
    return copies.length;
  }

  /** Cut `id` off from every other node, both ways. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.blocked.add(`${id}>${other}`);
      this.blocked.add(`${other}>${id}`);
    }
  }

  /** Split the nodes into groups that cannot talk to each other. */
  partition(...groups: readonly (readonly NodeId[])[]): void {
    this.heal();
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.blocked.add(`${a}>${b}`);
      }
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  // ---------------------------------------------------------------------------------------
  // Time, clients, crashes

  /** Move the clock forward by `ms`, ticking every node whose deadline falls on the way. */
  elapse(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next = end;
      for (const n of this.nodes.values()) if (n.alive) next = Math.min(next, n.core.deadline());
      this.now = Math.max(this.now, next);
      for (const [id, n] of this.nodes) {
        if (n.alive && n.core.deadline() <= this.now) {
          n.core.tick(this.now);
          this.flush(id);
        }
      }
      if (this.now >= end) return;
    }
  }

  /** Alternate delivering and the passage of time in `stepMs` steps for `ms`. */
  run(ms: number, stepMs = 5): void {
    for (let t = 0; t < ms; t += stepMs) {
      this.elapse(stepMs);
      this.stabilize();
    }
  }

  /** Send a client request to node `id`; returns the replies it produced right away. */
  request(id: NodeId, req: RaftRequest<C>): RaftReply[] {
    const n = this.node(id);
    const client = this.nextClient++;
    n.core.request(this.now, client, req);
    const before = n.replies.length;
    this.flush(id);
    return n.replies
      .slice(before)
      .filter((r) => r.client === client)
      .map((r) => r.reply);
  }

  requestId(): number {
    return this.nextRequestId++;
  }

  propose(id: NodeId, data: C): RaftReply {
    const [reply] = this.request(id, { type: 'propose', id: this.requestId(), data });
    assert(reply !== undefined, 'a proposal is always answered at once');
    return reply;
  }

  /** Campaign on `id` and deliver everything: the usual way to elect a given leader. */
  elect(id: NodeId): void {
    this.request(id, { type: 'campaign', id: this.requestId() });
    this.stabilize();
    assert(this.core(id).status().role === 'leader', `node ${id} did not win`);
  }

  /** Crash `id`: it loses everything not on its disk; messages to it are lost. */
  crash(id: NodeId): void {
    const n = this.node(id);
    n.alive = false;
    this.inFlight = this.inFlight.filter((e) => e.to !== id);
  }

  /**
   * Crash `id` in the middle of writing its next batch: only the first `keep` persist items
   * reach the disk, and nothing of the batch leaves the node.
   */
  crashMidBatch(id: NodeId, keep: number): void {
    const n = this.node(id);
    const rd = n.core.ready();
    if (rd !== undefined) for (const item of rd.persist.slice(0, keep)) applyPersist(n.disk, item);
    this.crash(id);
  }

  restart(id: NodeId): void {
    const n = this.node(id);
    assert(!n.alive, `node ${id} is running`);
    n.core = RaftCore.restore(id, cloneDurableState(n.disk), this.opts, this.rng.fork());
    n.alive = true;
    n.delivered = [];
    this.checker.restarted(id);
    this.flush(id);
  }

  /** Normal entries' data applied by node `id`, in order (after its last restart). */
  appliedData(id: NodeId): C[] {
    const out: C[] = [];
    for (const d of this.node(id).delivered) {
      if (d.kind === 'entry' && d.entry.kind === 'normal') out.push(d.entry.data);
    }
    return out;
  }
}
