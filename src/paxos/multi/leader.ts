import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { QuorumSystem } from '../../kernel/quorum.ts';
import { compareProposalIds, type ProposalId } from '../ballot.ts';
import type { AcceptedInstance, Batch, LogCommand } from './types.ts';

export interface LeaderLimits {
  /** Instances proposed but not yet chosen, at most (pipelining depth). */
  readonly pipelineMax: number;
  /** Commands per instance, at most (batching). */
  readonly batchCommandsMax: number;
  /** Commands waiting for a pipeline slot, at most; more are refused as busy. */
  readonly pendingRequestsMax: number;
  readonly leaseDurationMs: number;
  /** Subtracted from every lease to cover clock-rate drift between nodes. */
  readonly clockDriftMarginMs: number;
}

/** Heartbeat rounds remembered for lease acks; older acks are simply ignored. */
const HEARTBEATS_TRACKED_MAX = 8;

/**
 * Phase 2 of the recovered instances: for each instance from `fromInstance` up to the
 * highest reported, the highest-ballot accepted value, or a no-op (the empty batch) for a
 * gap ("Paxos Made Simple", section 3).
 */
export function recoverInstances<C>(
  fromInstance: number,
  promises: Iterable<readonly AcceptedInstance<C>[]>,
  noopEverything: boolean,
): Map<number, Batch<C>> {
  const best = new Map<number, AcceptedInstance<C>>();
  let last = fromInstance - 1;
  for (const accepted of promises) {
    for (const a of accepted) {
      if (a.instance < fromInstance) continue;
      last = Math.max(last, a.instance);
      const prior = best.get(a.instance);
      if (prior === undefined || compareProposalIds(a.ballot, prior.ballot) > 0)
        best.set(a.instance, a);
    }
  }
  const out = new Map<number, Batch<C>>();
  for (let i = fromInstance; i <= last; i++) {
    out.set(i, noopEverything ? [] : (best.get(i)?.value ?? []));
  }
  return out;
}

/**
 * A leader's volatile state for one ballot: the pipeline of proposed instances with their
 * acks, the batching queue, and the lease from heartbeat acks.
 */
export class Leadership<C> {
  readonly inflight = new Map<number, { value: Batch<C>; acks: Set<NodeId> }>();
  private readonly queue: LogCommand<C>[] = [];
  private readonly heartbeats = new Map<number, { sentAt: number; acks: Set<NodeId> }>();
  private heartbeatSeq = 0;
  leaseExpiresAt = Number.NEGATIVE_INFINITY;
  /** Members heard from (any message) since the last quorum check, this node included. */
  private readonly heardFrom = new Set<NodeId>();

  constructor(
    readonly ballot: ProposalId,
    private readonly quorum: QuorumSystem,
    private readonly limits: LeaderLimits,
    public nextInstance: number,
    /** Reads wait until every recovered instance is chosen. */
    readonly recoveryEnd: number,
    /** When the first quorum check is due: a new leader gets one full period. */
    public checkQuorumAt: number,
    self: NodeId,
  ) {
    this.heardFrom.add(self);
  }

  heardOf(member: NodeId): void {
    this.heardFrom.add(member);
  }

  /**
   * The quorum check (as Raft's check-quorum, dissertation 6.2): whether a quorum was heard
   * from since the last check, which it then starts afresh, due again `periodMs` later.
   */
  checkQuorum(now: number, periodMs: number, self: NodeId): boolean {
    const active = this.quorum.isQuorum(this.heardFrom);
    this.heardFrom.clear();
    this.heardFrom.add(self);
    this.checkQuorumAt = now + periodMs;
    return active;
  }

  /** Queues a command; false when the queue is full. */
  enqueue(command: LogCommand<C>): boolean {
    if (this.queue.length >= this.limits.pendingRequestsMax) return false;
    this.queue.push(command);
    return true;
  }

  /** Commands waiting for a pipeline slot. */
  queued(): number {
    return this.queue.length;
  }

  /** Empties the queue of commands not yet proposed (on losing leadership). */
  drainQueue(): LogCommand<C>[] {
    return this.queue.splice(0, this.queue.length);
  }

  /** Adds a proposal for `instance` to the pipeline (recovery may exceed the pipeline depth). */
  propose(instance: number, value: Batch<C>): void {
    assert(!this.inflight.has(instance), `instance ${instance} is already in flight`);
    this.inflight.set(instance, { value, acks: new Set() });
    this.nextInstance = Math.max(this.nextInstance, instance + 1);
  }

  /** Cuts the next batch while the pipeline has room; null when it has none or nothing waits. */
  nextBatch(): { instance: number; value: Batch<C> } | null {
    if (this.queue.length === 0 || this.inflight.size >= this.limits.pipelineMax) return null;
    const value = this.queue.splice(0, this.limits.batchCommandsMax);
    const instance = this.nextInstance;
    this.propose(instance, value);
    return { instance, value };
  }

  /** Records an ack; returns the value when this makes the instance chosen. */
  onAccepted(from: NodeId, instance: number): Batch<C> | null {
    const slot = this.inflight.get(instance);
    if (slot === undefined) return null;
    slot.acks.add(from);
    if (!this.quorum.isQuorum(slot.acks)) return null;
    this.inflight.delete(instance);
    return slot.value;
  }

  startHeartbeat(now: number): number {
    const seq = ++this.heartbeatSeq;
    this.heartbeats.set(seq, { sentAt: now, acks: new Set() });
    if (this.heartbeats.size > HEARTBEATS_TRACKED_MAX) {
      const oldest = this.heartbeats.keys().next().value;
      if (oldest !== undefined) this.heartbeats.delete(oldest);
    }
    return seq;
  }

  /**
   * A heartbeat ack. Once a quorum acked heartbeat `seq`, each of them refuses other
   * leaders until `leaseDurationMs` after it received it, which is after `sentAt`; so the
   * lease holds until sentAt + leaseDurationMs - clockDriftMarginMs on this clock.
   */
  onHeartbeatAck(from: NodeId, seq: number): void {
    const hb = this.heartbeats.get(seq);
    if (hb === undefined) return;
    hb.acks.add(from);
    if (!this.quorum.isQuorum(hb.acks)) return;
    const until = hb.sentAt + this.limits.leaseDurationMs - this.limits.clockDriftMarginMs;
    this.leaseExpiresAt = Math.max(this.leaseExpiresAt, until);
  }

  holdsLease(now: number): boolean {
    return now < this.leaseExpiresAt;
  }
}
