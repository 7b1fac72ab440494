import { assert } from '../kernel/assert.ts';
import type { ClientId } from '../kernel/ids.ts';

export interface ReadTicket {
  readonly client: ClientId;
  readonly id: number;
}

export interface ReadyRead extends ReadTicket {
  readonly index: number;
}

interface PendingRead extends ReadyRead {
  /** The heartbeat round whose quorum acknowledgement makes this read safe. */
  readonly round: number;
}

/** How many unacknowledged heartbeat send times the lease bookkeeping keeps. */
const ROUND_TIMES_MAX = 256;

/**
 * Leader-side bookkeeping for linearizable reads (dissertation 6.4). A read records the
 * commit index when it arrives and the next heartbeat round; once a quorum has answered that
 * round (or a later one), no other leader can have committed anything newer, and the read may
 * be served as soon as the state machine has applied the recorded index. Reads that arrive
 * before the leader has committed an entry of its own term wait (its commit index may be
 * behind its predecessor's). The same rounds give the leader lease (6.4.1): a quorum that
 * answered a round sent at time t will not elect another leader before t + lease.
 */
export class ReadIndexTracker {
  private waiting: ReadTicket[] = [];
  private pending: PendingRead[] = [];
  private sentRound = 0;
  private confirmedRound = 0;
  private readonly sentAt = new Map<number, number>();
  private leaseEnd = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly pendingReadsMax: number,
    private readonly leaseMs: number,
  ) {
    assert(pendingReadsMax >= 1, 'pendingReadsMax must be positive');
  }

  get size(): number {
    return this.waiting.length + this.pending.length;
  }
  get round(): number {
    return this.sentRound;
  }

  full(): boolean {
    return this.size >= this.pendingReadsMax;
  }

  /** Whether the lease covers `now` (only meaningful while leader with check-quorum on). */
  leaseValid(now: number): boolean {
    return now < this.leaseEnd;
  }

  waitForCommit(ticket: ReadTicket): void {
    assert(!this.full(), 'read queue overflow');
    this.waiting.push(ticket);
  }

  takeWaiting(): ReadTicket[] {
    const w = this.waiting;
    this.waiting = [];
    return w;
  }

  /** Queue a read at `index`, to be confirmed by the next heartbeat round. */
  add(ticket: ReadTicket, index: number): void {
    assert(!this.full(), 'read queue overflow');
    // No spread: properties after one take a slow path in V8 (router-msgs.ts says more).
    this.pending.push({ client: ticket.client, id: ticket.id, index, round: this.sentRound + 1 });
  }

  /** Whether a read waits for a round not yet sent. */
  needsRound(): boolean {
    return (this.pending.at(-1)?.round ?? 0) > this.sentRound;
  }

  /** A heartbeat round goes out at `now`; returns its number. */
  startRound(now: number): number {
    this.sentRound++;
    this.sentAt.set(this.sentRound, now);
    if (this.sentAt.size > ROUND_TIMES_MAX) {
      const oldest = this.sentAt.keys().next().value as number;
      this.sentAt.delete(oldest);
    }
    return this.sentRound;
  }

  /** A quorum has acknowledged every round up to `round`: returns the reads that became safe. */
  confirm(round: number): ReadyRead[] {
    if (round <= this.confirmedRound) return [];
    assert(round <= this.sentRound, 'a quorum acknowledged a round never sent');
    this.confirmedRound = round;
    const sent = this.sentAt.get(round);
    if (sent !== undefined) this.leaseEnd = Math.max(this.leaseEnd, sent + this.leaseMs);
    for (const r of [...this.sentAt.keys()]) if (r <= round) this.sentAt.delete(r);
    let k = 0;
    while (k < this.pending.length && (this.pending[k] as PendingRead).round <= round) k++;
    const done = this.pending.splice(0, k);
    return done.map(({ client, id, index }) => ({ client, id, index }));
  }

  /** Leadership lost: every queued read, for a notLeader answer. */
  clear(): ReadTicket[] {
    const all: ReadTicket[] = [...this.waiting, ...this.pending];
    this.waiting = [];
    this.pending = [];
    this.sentRound = 0;
    this.confirmedRound = 0;
    this.sentAt.clear();
    this.leaseEnd = Number.NEGATIVE_INFINITY;
    return all.map(({ client, id }) => ({ client, id }));
  }
}
