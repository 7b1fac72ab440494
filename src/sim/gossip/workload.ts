import type { GossipReply, GossipTypes } from '../../gossip/types.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { CheckOutcome, Workload, WorkloadContext, WorkloadIo } from '../protocol.ts';

export interface EventWorkloadSettings {
  /** Publishes are spread over this much of the faulty phase. */
  readonly publishWindowMs: number;
  /** The faulty phase lasts at least this long. */
  readonly safetyMs: number;
  /** After healing, the cluster has this long to converge; the monitor checks at its end. */
  readonly convergeMs: number;
  /**
   * The window instead of `convergeMs` when at most half the nodes are live after healing
   * (the rest left or crashed for good); see `minorityConvergeMs`.
   */
  readonly minorityConvergeMs: number;
  /** How often after healing to look whether it converged already (the run then ends). */
  readonly convergeCheckMs: number;
}

const TIMER_PUBLISH = 1;
const TIMER_CONVERGED = 2;

/**
 * Clients publish user events to random nodes through the faulty phase; after healing the
 * run waits `convergeMs` and the monitor's end check holds every live view to the truth.
 */
export class EventWorkload implements Workload<GossipTypes> {
  private io: WorkloadIo<GossipTypes> | undefined;
  private invoked = 0;
  private published = 0;
  private refused = 0;
  private healedAt = Number.POSITIVE_INFINITY;
  private windowMs: number;
  private converged = false;

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly s: EventWorkloadSettings,
    /** Whether every live view is the truth right now. */
    private readonly convergedNow: () => boolean,
    /** Whether at most half the nodes stay live (asked once, at healing: no faults follow). */
    private readonly minorityLive: () => boolean,
  ) {
    this.windowMs = s.convergeMs;
  }

  start(io: WorkloadIo<GossipTypes>): void {
    this.io = io;
    const clients = this.ctx.clients;
    if (clients.length === 0) return;
    for (let i = 0; i < this.ctx.ops; i++) {
      const at = this.ctx.rng.next() * this.s.publishWindowMs;
      io.setTimer(clients[i % clients.length]!, at, TIMER_PUBLISH);
    }
  }

  onReply(_client: ClientId, _from: NodeId, reply: GossipReply): void {
    if (reply.type === 'published') this.published++;
    else if (reply.type === 'refused') this.refused++;
  }

  onTimer(client: ClientId, token: number): void {
    const io = this.io!;
    if (token === TIMER_CONVERGED) {
      const now = io.now();
      const end = this.healedAt + this.windowMs;
      if (this.convergedNow() || now >= end) this.converged = true;
      else io.setTimer(1, Math.min(now + this.s.convergeCheckMs, end), TIMER_CONVERGED);
      return;
    }
    const node = this.ctx.rng.pick(this.ctx.members);
    this.invoked++;
    io.send(client, node, { type: 'publish', name: 'sim', payload: `c${client}-${this.invoked}` });
  }

  exhausted(): boolean {
    const enough = this.invoked >= this.ctx.ops || this.ctx.clients.length === 0;
    return enough && this.io!.now() >= this.s.safetyMs;
  }

  heal(): void {
    const io = this.io!;
    this.healedAt = io.now();
    if (this.minorityLive()) this.windowMs = Math.max(this.s.convergeMs, this.s.minorityConvergeMs);
    // Client 1 owns the convergence timer; with no clients the monitor checks at the end of the liveness bound.
    if (this.ctx.clients.length > 0)
      io.setTimer(1, this.healedAt + this.s.convergeCheckMs, TIMER_CONVERGED);
    else this.converged = true;
  }

  done(): boolean {
    return this.converged;
  }

  describePending(): string {
    return `not converged ${this.windowMs} ms after healing at ${this.healedAt}ms`;
  }

  check(): CheckOutcome {
    return {
      verdict: 'pass',
      summary: `${this.published} events published, ${this.refused} refused; views converged`,
    };
  }
}
