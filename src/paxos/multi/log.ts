import { assert } from '../../kernel/assert.ts';
import {
  compareProposalIds,
  maxProposalId,
  type ProposalId,
  proposalIdEquals,
  ZERO_PROPOSAL_ID,
} from '../ballot.ts';
import type {
  AcceptedInstance,
  Batch,
  ChosenInstance,
  MultiDurable,
  MultiPersist,
} from './types.ts';

/**
 * One replica's acceptor and learner state over the instance log: the single promise that
 * covers every instance (phase 1 once, "Paxos Made Simple" section 3), accepted values per
 * instance, the chosen instances, and the snapshot that replaced the prefix up to
 * `snapshotUpTo`. `frontier` is the first instance not known to be chosen; everything
 * below it has been delivered (or is in the snapshot).
 */
export class ReplicaLog<C, S> {
  promised: ProposalId;
  private readonly accepted = new Map<number, { ballot: ProposalId; value: Batch<C> }>();
  private readonly chosen = new Map<number, Batch<C>>();
  snapshotUpTo = 0;
  snapshotData: S | null = null;
  frontier = 1;
  /** The highest ballot this log ever accepted (for the invariant accepted <= promised). */
  highestAccepted: ProposalId = ZERO_PROPOSAL_ID;

  constructor(durable: MultiDurable<C, S>) {
    this.promised = durable.promised;
    for (const [i, a] of durable.accepted) {
      this.accepted.set(i, a);
      this.highestAccepted = maxProposalId(this.highestAccepted, a.ballot);
    }
    for (const [i, v] of durable.chosen) this.chosen.set(i, v);
    if (durable.snapshot !== null) {
      this.snapshotUpTo = durable.snapshot.upTo;
      this.snapshotData = durable.snapshot.data;
    }
    // What was durably chosen was delivered before the crash; the host rebuilds it.
    this.frontier = this.snapshotUpTo + 1;
    while (this.chosen.has(this.frontier)) this.frontier++;
  }

  acceptedView(): AcceptedInstance<C>[] {
    return [...this.accepted].map(([instance, a]) => ({ instance, ...a }));
  }

  chosenView(): ChosenInstance<C>[] {
    return [...this.chosen].map(([instance, value]) => ({ instance, value }));
  }

  /** Phase 1b: promise every instance from the caller's start; null when refused. */
  prepare(ballot: ProposalId): boolean {
    if (compareProposalIds(ballot, this.promised) <= 0) return false;
    this.promised = ballot;
    return true;
  }

  acceptedFrom(fromInstance: number): AcceptedInstance<C>[] {
    const out: AcceptedInstance<C>[] = [];
    for (const [instance, a] of this.accepted) {
      if (instance >= fromInstance) out.push({ instance, ...a });
    }
    return out;
  }

  /** Phase 2b for one instance; false when the ballot is below the promise. */
  accept(ballot: ProposalId, instance: number, value: Batch<C>): boolean {
    if (compareProposalIds(ballot, this.promised) < 0) return false;
    this.promised = ballot;
    this.highestAccepted = maxProposalId(this.highestAccepted, ballot);
    if (instance > this.snapshotUpTo) this.accepted.set(instance, { ballot, value });
    return true;
  }

  acceptedBallot(instance: number): ProposalId | null {
    return this.accepted.get(instance)?.ballot ?? null;
  }

  isChosen(instance: number): boolean {
    return instance <= this.snapshotUpTo || this.chosen.has(instance);
  }

  chosenValue(instance: number): Batch<C> | undefined {
    return this.chosen.get(instance);
  }

  /** Records a chosen value; returns the persist item, or null if already known. */
  learn(instance: number, value: Batch<C>): MultiPersist<C, S> | null {
    if (this.isChosen(instance)) return null;
    this.chosen.set(instance, value);
    return { type: 'chosen', instance, value };
  }

  /**
   * Learns every instance from the frontier below `commitIndex` whose accepted value came
   * from `ballot` (the leader proposes one value per instance per ballot, so that value is
   * the chosen one). Returns the persist items and whether a gap needs a catch-up.
   */
  learnCommitted(
    ballot: ProposalId,
    commitIndex: number,
  ): { persist: MultiPersist<C, S>[]; gap: boolean } {
    const persist: MultiPersist<C, S>[] = [];
    for (let i = this.frontier; i < commitIndex; i++) {
      if (this.isChosen(i)) continue;
      const a = this.accepted.get(i);
      if (a === undefined || !proposalIdEquals(a.ballot, ballot)) return { persist, gap: true };
      const item = this.learn(i, a.value);
      if (item !== null) persist.push(item);
    }
    return { persist, gap: false };
  }

  /** Moves the frontier over contiguous chosen instances and returns them, in order. */
  advance(): ChosenInstance<C>[] {
    const out: ChosenInstance<C>[] = [];
    for (;;) {
      const value = this.chosen.get(this.frontier);
      if (value === undefined) return out;
      out.push({ instance: this.frontier, value });
      this.frontier++;
    }
  }

  /** Up to `max` contiguous chosen instances from `from`, for a lagging peer. */
  chosenRange(from: number, max: number): ChosenInstance<C>[] {
    const out: ChosenInstance<C>[] = [];
    for (let i = from; out.length < max; i++) {
      const value = this.chosen.get(i);
      if (value === undefined) break;
      out.push({ instance: i, value });
    }
    return out;
  }

  /** Replaces the log up to `upTo` with a snapshot (the host's, or a peer's). */
  installSnapshot(upTo: number, data: S): void {
    assert(upTo > this.snapshotUpTo, 'a snapshot only moves forward');
    this.snapshotUpTo = upTo;
    this.snapshotData = data;
    for (const i of [...this.accepted.keys()]) if (i <= upTo) this.accepted.delete(i);
    for (const i of [...this.chosen.keys()]) if (i <= upTo) this.chosen.delete(i);
    // Chosen instances above `upTo` stay for `advance` to deliver after the snapshot.
    this.frontier = Math.max(this.frontier, upTo + 1);
  }

  retainedCount(): number {
    return this.chosen.size + this.accepted.size;
  }
}
