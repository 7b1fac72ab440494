import { assert } from '../kernel/assert.ts';
import type { Rng } from '../kernel/rng.ts';

/**
 * Per-message latency: `baseMs` plus an exponential jitter, plus now and then a long
 * exponential tail (a GC pause, a retransmission). Variable latency alone already reorders
 * messages; the reorder fault adds more.
 */
export interface LatencyModel {
  readonly baseMs: number;
  readonly jitterMeanMs: number;
  readonly tailChance: number;
  readonly tailMeanMs: number;
}

export const defaultLatency: LatencyModel = {
  baseMs: 1,
  jitterMeanMs: 1,
  tailChance: 0.01,
  tailMeanMs: 10,
};

/** Maps a uint32 into [0, 1). */
const U32_TO_UNIT = 1 / 0x1_0000_0000;

/** Why the network dropped a message, as negative codes `route` returns (names below). */
export const DROP_PARTITION = -1;
export const DROP_CUT = -2;
export const DROP_LOSS = -3;
export const dropReasons: Readonly<Record<number, string>> = {
  [DROP_PARTITION]: 'partition',
  [DROP_CUT]: 'cut',
  [DROP_LOSS]: 'loss',
};

/** The fault knobs the nemesis turns; all zero on a healed network. */
export interface LinkFaults {
  /** Probability that a node-to-node message is lost. */
  loss: number;
  /** Probability that a message is delivered twice (each copy with its own latency). */
  duplicate: number;
  /** Probability that a message gets an extra uniform delay in [0, reorderMaxMs). */
  reorder: number;
  reorderMaxMs: number;
}

/**
 * The simulated network between endpoints 0..endpoints-1: nodes are 0..nodeCount-1 and
 * clients follow. Partitions group nodes (clients reach every node, as Jepsen's clients
 * do); one-way cuts and clogs act on single directed links, client links included.
 * Everything is O(1) per message; the cut and clog tables are consulted only when non-empty.
 */
export class Network {
  readonly faults: LinkFaults = { loss: 0, duplicate: 0, reorder: 0, reorderMaxMs: 0 };
  /** Probability that a message between a client and a node is lost (independent of faults). */
  clientLoss = 0;
  private readonly group: Int32Array;
  private partitioned = false;
  private readonly cuts = new Set<number>();
  private readonly clogs = new Map<number, number>();

  constructor(
    readonly endpoints: number,
    readonly nodeCount: number,
    readonly latency: LatencyModel,
    private readonly rng: Rng,
  ) {
    assert(nodeCount >= 1 && nodeCount <= endpoints, 'network needs 1 <= nodes <= endpoints');
    assert(latency.baseMs >= 0 && latency.jitterMeanMs >= 0, 'latency must be non-negative');
    assert(latency.tailChance >= 0 && latency.tailChance <= 1, 'tailChance must be in [0, 1]');
    this.group = new Int32Array(nodeCount);
  }

  /**
   * When a message sent now from `from` to `to` arrives, or a negative DROP_* code. Call
   * `duplicate()` after a successful route to decide whether a second copy travels too.
   */
  route(from: number, to: number, now: number): number {
    const nodes = this.nodeCount;
    const bothNodes = from < nodes && to < nodes;
    if (bothNodes && this.partitioned && this.group[from] !== this.group[to]) return DROP_PARTITION;
    const link = from * this.endpoints + to;
    if (this.cuts.size > 0 && this.cuts.has(link)) return DROP_CUT;
    const loss = bothNodes ? this.faults.loss : this.clientLoss;
    if (loss > 0 && this.rng.next() < loss) return DROP_LOSS;
    let at = now + this.delay();
    if (this.clogs.size > 0) at += this.clogs.get(link) ?? 0;
    return at;
  }

  /** Whether to send a second copy of the message just routed; if so, route it again. */
  duplicate(): boolean {
    const p = this.faults.duplicate;
    return p > 0 && this.rng.next() < p;
  }

  /**
   * One message's latency. Uniforms come from single 32-bit draws: plenty of resolution for
   * a latency, and half the cost of `Rng.next()` on the hottest path of the simulator.
   */
  private delay(): number {
    const m = this.latency;
    const rng = this.rng;
    let d = m.baseMs;
    if (m.jitterMeanMs > 0) d -= Math.log((rng.nextU32() + 0.5) * U32_TO_UNIT) * m.jitterMeanMs;
    if (m.tailChance > 0 && rng.nextU32() * U32_TO_UNIT < m.tailChance) {
      d += rng.exponential(m.tailMeanMs);
    }
    const f = this.faults;
    if (f.reorder > 0 && rng.next() < f.reorder) d += rng.next() * f.reorderMaxMs;
    return d;
  }

  /**
   * Splits the nodes into the given groups (node indices); nodes in no group form one more
   * group together. Messages cross no group boundary.
   */
  partition(groups: readonly (readonly number[])[]): void {
    this.group.fill(groups.length);
    groups.forEach((members, g) => {
      for (const n of members) {
        assert(n >= 0 && n < this.nodeCount, `partition names unknown node index ${n}`);
        this.group[n] = g;
      }
    });
    this.partitioned = true;
  }

  /** Whether `from` can currently reach `to` (ignoring random loss). */
  connected(from: number, to: number): boolean {
    const both = from < this.nodeCount && to < this.nodeCount;
    if (both && this.partitioned && this.group[from] !== this.group[to]) return false;
    return !this.cuts.has(from * this.endpoints + to);
  }

  /** Whether any partition, cut, clog or link fault is in force. */
  isFaulty(): boolean {
    const f = this.faults;
    return (
      this.partitioned ||
      this.cuts.size > 0 ||
      this.clogs.size > 0 ||
      f.loss > 0 ||
      f.duplicate > 0 ||
      f.reorder > 0
    );
  }

  /** Cuts the directed link from -> to only: the reverse direction still works. */
  cut(from: number, to: number): void {
    this.checkLink(from, to);
    this.cuts.add(from * this.endpoints + to);
  }

  /** Slows the directed link from -> to by an extra `delayMs` per message. */
  clog(from: number, to: number, delayMs: number): void {
    this.checkLink(from, to);
    assert(delayMs >= 0, 'clog delay must be non-negative');
    this.clogs.set(from * this.endpoints + to, delayMs);
  }

  /** Undoes every partition, cut, clog and link fault. */
  heal(): void {
    this.partitioned = false;
    this.group.fill(0);
    this.cuts.clear();
    this.clogs.clear();
    this.faults.loss = 0;
    this.faults.duplicate = 0;
    this.faults.reorder = 0;
  }

  private checkLink(from: number, to: number): void {
    assert(from >= 0 && from < this.endpoints, `unknown endpoint ${from}`);
    assert(to >= 0 && to < this.endpoints && to !== from, `bad link ${from} -> ${to}`);
  }
}
