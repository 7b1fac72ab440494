import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import {
  type GossipConfig,
  suspicionConfirmationsNeeded,
  suspicionMaxTimeoutMs,
  suspicionMinTimeoutMs,
  suspicionTimeoutMs,
} from './config.ts';

/**
 * One suspicion (Lifeguard 4.2): it starts at the longest timeout and shrinks towards the
 * shortest as independent members confirm it, so a member many suspect is declared dead
 * quickly while one slow accuser alone cannot kill a healthy member.
 */
export class Suspicion {
  private readonly confirmers = new Set<NodeId>();
  private readonly needed: number;
  private readonly minMs: number;
  private readonly maxMs: number;
  /** Time we were paused since it started: we could not hear a refutation then. */
  private creditMs = 0;
  /** When we last told the suspect itself (so it can refute); rate-limits those messages. */
  toldAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly about: NodeId,
    readonly incarnation: number,
    private readonly accuser: NodeId,
    readonly startedAt: number,
    c: Pick<
      GossipConfig,
      'suspicionMult' | 'suspicionMaxTimeoutMult' | 'probeIntervalMs' | 'lifeguard'
    >,
    n: number,
  ) {
    this.needed = suspicionConfirmationsNeeded(c.suspicionMult, n);
    this.minMs = suspicionMinTimeoutMs(c.suspicionMult, n, c.probeIntervalMs);
    // Without Lifeguard, SWIM's fixed timeout: the shortest, which confirmations cannot change.
    this.maxMs = c.lifeguard
      ? suspicionMaxTimeoutMs(this.minMs, c.suspicionMaxTimeoutMult)
      : this.minMs;
    assert(this.minMs > 0 && this.maxMs >= this.minMs, 'suspicion bounds out of order');
  }

  /** Counts `from` as a confirmation; true if it was a new, independent one. */
  confirm(from: NodeId): boolean {
    if (from === this.accuser || this.confirmers.has(from)) return false;
    if (this.confirmers.size >= this.needed) return false;
    this.confirmers.add(from);
    return true;
  }

  get confirmations(): number {
    return this.confirmers.size;
  }

  credit(ms: number): void {
    assert(ms >= 0, 'negative pause credit');
    this.creditMs += ms;
  }

  /** Local time at which the suspicion becomes a dead verdict. */
  deadline(): number {
    const t = suspicionTimeoutMs(this.confirmers.size, this.needed, this.minMs, this.maxMs);
    return this.startedAt + this.creditMs + t;
  }

  /** The latest a verdict may come: the longest timeout plus time we were paused. */
  latestAt(): number {
    return this.startedAt + this.creditMs + this.maxMs;
  }
}
