import type { Core, CoreTypes, Ready } from '../kernel/core.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';

/**
 * One simulated machine: its disk (durable state, which survives crashes), its process
 * (the core and the batch it is fsyncing, lost on a crash), and its clock.
 *
 * The local clock is piecewise linear in global time: since `baseGlobal` it reads
 * `baseLocal + (now - baseGlobal) * rate`. Skew is an offset, drift a rate other than 1;
 * changing either rebases, so local time never runs backwards.
 */
export class SimNode<T extends CoreTypes, Durable> {
  core: Core<T> | undefined = undefined;
  paused = false;
  /** Bumped at every crash, so a late fsync completion of a dead process is ignored. */
  incarnation = 0;
  /** The batch whose `persist` items are being fsynced; its effects wait for completion. */
  batch: Ready<T> | undefined = undefined;
  /** The fsync finished while the process was paused; carry the batch out on resume. */
  fsyncDue = false;

  /** Mean processing delay of every input while CPU-starved (the `slow` fault); 0: none. */
  slowMs = 0;
  /** A tick fell due while slow and waits to be handed to the core; no other is scheduled. */
  slowTickPending = false;

  /** Only the tick event carrying the current generation is live. */
  tickGen = 0;
  /** Global time of the live tick event, +Infinity when none is scheduled. */
  tickAt = Number.POSITIVE_INFINITY;
  /** The core's deadline (local time) that the live tick event serves. */
  tickLocal = Number.POSITIVE_INFINITY;

  baseGlobal = 0;
  baseLocal = 0;
  rate = 1;
  lastLocal = 0;

  /** Messages that arrived while paused, in arrival order: sender endpoint, id, payload. */
  readonly inboxFrom: number[] = [];
  readonly inboxId: number[] = [];
  readonly inboxMsg: unknown[] = [];

  constructor(
    readonly id: NodeId,
    readonly index: number,
    public durable: Durable,
    /** Each incarnation of the process gets a fresh fork of this stream. */
    readonly rng: Rng,
  ) {}

  /** The local clock at global time `now`; never less than what the core already saw. */
  localTime(now: number): number {
    const t = this.baseLocal + (now - this.baseGlobal) * this.rate;
    if (t > this.lastLocal) this.lastLocal = t;
    return this.lastLocal;
  }

  /** The global time at which the local clock reads `local`. */
  globalTime(local: number): number {
    return this.baseGlobal + (local - this.baseLocal) / this.rate;
  }

  /** Jumps the clock forward by `jumpMs` and lets it run at `rate` from global time `now`. */
  setClock(now: number, jumpMs: number, rate: number): void {
    const local = this.localTime(now) + Math.max(0, jumpMs);
    this.baseGlobal = now;
    this.baseLocal = local;
    this.lastLocal = local;
    this.rate = rate;
  }

  clearInbox(): void {
    this.inboxFrom.length = 0;
    this.inboxId.length = 0;
    this.inboxMsg.length = 0;
  }
}
