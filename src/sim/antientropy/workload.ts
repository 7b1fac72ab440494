import type { CoreTypes } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { Rng } from '../../kernel/rng.ts';
import type { CheckOutcome, Workload, WorkloadContext, WorkloadIo } from '../protocol.ts';

export interface WriteWorkloadSettings {
  /** Writes are spread over this much of the faulty phase. */
  readonly writeWindowMs: number;
  /** The faulty phase lasts at least this long. */
  readonly safetyMs: number;
  /** After healing, the replicas have this long to hold the same data (the stated bound). */
  readonly convergeMs: number;
  /** How often after healing to look whether they already do (the run then ends). */
  readonly convergeCheckMs: number;
}

const TIMER_WRITE = 1;
const TIMER_CONVERGED = 2;

/**
 * Clients write to random nodes through the faulty phase (what a write is, the plugin
 * says); after healing, writes stop and the run waits until every live replica holds the
 * same data, or `convergeMs`, after which the monitor's end check judges.
 */
export class WriteWorkload<T extends CoreTypes> implements Workload<T> {
  private io: WorkloadIo<T> | undefined;
  private invoked = 0;
  private healedAt = Number.POSITIVE_INFINITY;
  private converged = false;
  /** Replies by kind ('ok', 'refused'...), for the summary. */
  readonly replies = new Map<string, number>();
  /** Time from healing until the replicas agreed, if they did. */
  convergedAfterMs: number | undefined;

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly s: WriteWorkloadSettings,
    private readonly nextWrite: (rng: Rng, n: number) => T['request'],
    private readonly replyKind: (reply: T['reply']) => string,
    /** Whether every live replica holds the same data right now. */
    private readonly convergedNow: () => boolean,
    /** Faults are over: undo what the plugin's own faults did (churned-out nodes rejoin). */
    private readonly onHeal: () => void,
  ) {}

  start(io: WorkloadIo<T>): void {
    this.io = io;
    const clients = this.ctx.clients;
    if (clients.length === 0) return;
    for (let i = 0; i < this.ctx.ops; i++) {
      const at = this.ctx.rng.next() * this.s.writeWindowMs;
      io.setTimer(clients[i % clients.length]!, at, TIMER_WRITE);
    }
  }

  onReply(_client: ClientId, _from: NodeId, reply: T['reply']): void {
    const kind = this.replyKind(reply);
    this.replies.set(kind, (this.replies.get(kind) ?? 0) + 1);
  }

  onTimer(client: ClientId, token: number): void {
    const io = this.io!;
    if (token === TIMER_CONVERGED) {
      const now = io.now();
      if (this.convergedNow()) {
        this.converged = true;
        this.convergedAfterMs = now - this.healedAt;
      } else if (now >= this.healedAt + this.s.convergeMs) this.converged = true;
      else {
        const next = Math.min(now + this.s.convergeCheckMs, this.healedAt + this.s.convergeMs);
        io.setTimer(1, next, TIMER_CONVERGED);
      }
      return;
    }
    // Writes stop at healing: the bound is on reconciling what the faulty phase left.
    if (io.now() >= this.healedAt) return;
    const node = this.ctx.rng.pick(this.ctx.members);
    this.invoked++;
    io.send(client, node, this.nextWrite(this.ctx.rng, this.invoked));
  }

  exhausted(): boolean {
    const enough = this.invoked >= this.ctx.ops || this.ctx.clients.length === 0;
    return enough && this.io!.now() >= this.s.safetyMs;
  }

  heal(): void {
    const io = this.io!;
    this.healedAt = io.now();
    this.onHeal();
    if (this.ctx.clients.length > 0)
      io.setTimer(1, this.healedAt + this.s.convergeCheckMs, TIMER_CONVERGED);
    else this.converged = true;
  }

  done(): boolean {
    return this.converged;
  }

  describePending(): string {
    return `replicas differ ${this.s.convergeMs} ms after healing at ${this.healedAt}ms`;
  }

  check(): CheckOutcome {
    const kinds = [...this.replies].map(([k, n]) => `${n} ${k}`).join(', ');
    const after =
      this.convergedAfterMs === undefined
        ? ''
        : `, same data ${this.convergedAfterMs.toFixed(0)} ms after healing`;
    return {
      verdict: 'pass',
      summary: `${this.invoked} writes (${kinds || 'no replies'})${after}`,
    };
  }
}
