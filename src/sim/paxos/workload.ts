import type { HistoryEvent, Json } from '../../check/history.ts';
import { assert } from '../../kernel/assert.ts';
import type { CoreTypes } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { CheckOutcome, Workload, WorkloadContext, WorkloadIo } from '../protocol.ts';

/**
 * Clients of a single-decree protocol (Basic or Fast Paxos). One run is one decree, with
 * every client racing to get its own value chosen: that race, under faults, is where Paxos
 * is interesting, and a run per decree keeps each seed's schedule independent.
 *
 * Safety phase: `ops` proposals over all clients, each with a fresh value, one at a time
 * per client, retried at other nodes on timeout. Early ones race; later ones find the decree
 * decided, which still exercises learning and the `decided` catch-up under faults.
 * After healing (liveness): every node must answer a proposal with the chosen value itself,
 * which proves each node learned it within the bound.
 *
 * The history records a proposal as a write-once register operation: `cas [null, v]` on key
 * `decree`, `ok` when v was chosen, `fail` when another value was, `info` when it gave up.
 */
export interface DecreeAdapter<T extends CoreTypes> {
  /**
   * The requests of one attempt at proposing `value`, aimed at `target`. A `probe` (after
   * healing) must reach `target` alone: only its own answer shows that it learned.
   */
  attempt(
    client: ClientId,
    value: string,
    target: NodeId,
    probe: boolean,
  ): readonly DecreeSend<T>[];
  /** The decided value a reply reports, or undefined if the node refused (busy). */
  decided(reply: T['reply']): string | undefined;
}

export interface DecreeSend<T extends CoreTypes> {
  readonly node: NodeId;
  readonly req: T['request'];
}

export interface DecreeWorkloadSettings {
  /** Mean idle time between a client's proposals. */
  readonly thinkMeanMs: number;
  readonly attemptTimeoutMs: number;
  /** Attempts per proposal in the safety phase; after healing, attempts are unbounded. */
  readonly attemptsMax: number;
  /**
   * Every client's first proposal comes in [startAfterMs, startAfterMs + startSpreadMs): the
   * nemesis has struck by then, and the first proposals race each other under its faults.
   */
  readonly startAfterMs: number;
  readonly startSpreadMs: number;
}

export const defaultDecreeSettings: DecreeWorkloadSettings = {
  startAfterMs: 300,
  startSpreadMs: 20,
  thinkMeanMs: 30,
  attemptTimeoutMs: 500,
  attemptsMax: 5,
};

const IDLE = 0;
const AWAITING = 1;
const FINISHED = 2;

interface Client {
  readonly id: ClientId;
  process: number;
  state: number;
  token: number;
  value: string | undefined;
  attempts: number;
  target: NodeId;
  /** After healing: the nodes this client still has to hear the decision from. */
  readonly probes: NodeId[];
  proposals: number;
}

export class DecreeWorkload<T extends CoreTypes> implements Workload<T> {
  private readonly clients: Client[];
  private readonly events: HistoryEvent[] = [];
  private readonly proposed = new Set<string>();
  /** Every decided value a reply reported, with the first node that reported it. */
  private readonly decisions = new Map<string, NodeId>();
  private io: WorkloadIo<T> | undefined;
  private remaining: number;
  private nextProcess: number;
  private healed = false;

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly adapter: DecreeAdapter<T>,
    private readonly settings: DecreeWorkloadSettings = defaultDecreeSettings,
  ) {
    assert(ctx.clients.length >= 1, 'a decree workload needs at least one client');
    assert(settings.attemptsMax >= 1 && settings.attemptTimeoutMs > 0, 'bad decree settings');
    this.remaining = ctx.ops;
    this.nextProcess = ctx.clients.length;
    this.clients = ctx.clients.map((id, i) => ({
      id,
      process: i,
      state: IDLE,
      token: 0,
      value: undefined,
      attempts: 0,
      target: ctx.members[0]!,
      probes: [],
      proposals: 0,
    }));
  }

  start(io: WorkloadIo<T>): void {
    this.io = io;
    const { startAfterMs, startSpreadMs } = this.settings;
    for (const c of this.clients) {
      const at = io.now() + startAfterMs + this.ctx.rng.next() * startSpreadMs;
      io.setTimer(c.id, at, ++c.token);
    }
  }

  exhausted(): boolean {
    return this.remaining === 0;
  }

  heal(): void {
    this.healed = true;
    // Each node is probed by one client, round robin; an idle client starts right away.
    this.ctx.members.forEach((node, i) => {
      this.clients[i % this.clients.length]!.probes.push(node);
    });
    for (const c of this.clients) if (c.state !== AWAITING) this.next(c);
  }

  done(): boolean {
    return this.healed && this.clients.every((c) => c.state === FINISHED);
  }

  describePending(): string {
    const stuck = this.clients.filter((c) => c.state !== FINISHED);
    const show = (c: Client) =>
      `client ${c.id} at node ${c.target} after ${c.attempts} attempt(s), ${c.probes.length} node(s) unconfirmed`;
    return `${stuck.length} client(s) unfinished: ${stuck.map(show).join('; ')}`;
  }

  check(): CheckOutcome {
    const values = [...this.decisions.keys()];
    if (values.length > 1) {
      const seen = [...this.decisions].map(([v, n]) => `${v} (from node ${n})`).join(', ');
      return { verdict: 'violation', message: `clients were told different decisions: ${seen}` };
    }
    const [value] = values;
    if (value === undefined) return { verdict: 'violation', message: 'no decision was reported' };
    if (!this.proposed.has(value)) {
      return { verdict: 'violation', message: `decided value ${value} was never proposed` };
    }
    const invoked = this.events.filter((e) => e.type === 'invoke').length;
    const won = this.events.filter((e) => e.type === 'ok').length;
    return {
      verdict: 'pass',
      summary: `one value decided (${value}) and learned by all ${this.ctx.members.length} nodes; ${invoked} proposals, ${won} told they won`,
    };
  }

  onTimer(clientId: ClientId, token: number): void {
    const c = this.client(clientId);
    if (token !== c.token) return;
    if (c.state === IDLE) {
      this.next(c);
      return;
    }
    if (c.state !== AWAITING) return;
    const probing = this.healed && c.value === undefined;
    if (!probing && !this.healed && c.attempts >= this.settings.attemptsMax) {
      this.complete(c, 'info');
      return;
    }
    if (!probing) c.target = this.nextNode(c.target);
    this.attempt(c);
  }

  onReply(clientId: ClientId, from: NodeId, reply: T['reply']): void {
    const c = this.client(clientId);
    if (c.state !== AWAITING) return;
    const decided = this.adapter.decided(reply);
    if (decided === undefined) return;
    if (!this.decisions.has(decided)) this.decisions.set(decided, from);
    if (c.value !== undefined) {
      this.complete(c, decided === c.value ? 'ok' : 'fail');
      return;
    }
    // A probe counts only when the probed node itself answers: that node has learned.
    if (from !== c.target) return;
    c.probes.shift();
    this.next(c);
  }

  private client(id: ClientId): Client {
    const c = this.clients[id - 1];
    if (c === undefined) assert(false, `unknown client ${id}`);
    return c;
  }

  private think(c: Client): void {
    c.state = IDLE;
    const io = this.io!;
    io.setTimer(c.id, io.now() + this.ctx.rng.exponential(this.settings.thinkMeanMs), ++c.token);
  }

  /** The client's next move: a proposal, a probe after healing, or nothing left to do. */
  private next(c: Client): void {
    if (this.healed) {
      const node = c.probes[0];
      if (node === undefined) {
        c.state = FINISHED;
        c.token++;
        return;
      }
      c.value = undefined;
      c.target = node;
      c.attempts = 0;
      this.attempt(c);
      return;
    }
    if (this.remaining === 0) return;
    this.remaining--;
    c.value = `c${c.id}.${++c.proposals}`;
    this.proposed.add(c.value);
    c.target = this.ctx.rng.pick(this.ctx.members);
    c.attempts = 0;
    this.record(c, 'invoke');
    this.attempt(c);
  }

  private attempt(c: Client): void {
    const io = this.io!;
    // A probe proposes too (a node only answers a proposal), with a value of its own.
    const value = c.value ?? `probe${c.target}`;
    if (c.value === undefined) this.proposed.add(value);
    for (const send of this.adapter.attempt(c.id, value, c.target, c.value === undefined)) {
      io.send(c.id, send.node, send.req);
    }
    c.attempts++;
    c.state = AWAITING;
    io.setTimer(c.id, io.now() + this.settings.attemptTimeoutMs, ++c.token);
  }

  private complete(c: Client, type: 'ok' | 'fail' | 'info'): void {
    this.record(c, type);
    if (type === 'info') c.process = this.nextProcess++;
    c.value = undefined;
    if (this.healed) this.next(c);
    else this.think(c);
  }

  private record(c: Client, type: HistoryEvent['type']): void {
    const value: Json = [null, c.value ?? null];
    const event: HistoryEvent = {
      process: c.process,
      type,
      f: 'cas',
      key: 'decree',
      value,
      time: this.io!.now(),
    };
    this.events.push(event);
    this.io!.record(event);
  }

  private nextNode(after: NodeId): NodeId {
    const members = this.ctx.members;
    return members[(members.indexOf(after) + 1) % members.length]!;
  }
}
