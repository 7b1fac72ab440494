import { assert } from '../kernel/assert.ts';

/**
 * What the leader knows of one follower, as a small state machine (etcd-io/raft tracker/):
 * - `probe`: where the follower's log matches is unknown; one append at a time, each waiting
 *   for its answer (or a heartbeat answer) before the next.
 * - `replicate`: the follower is known to match up to `match`; appends are pipelined
 *   optimistically, bounded by the in-flight window.
 * - `snapshot`: the follower needs entries the leader compacted away; a snapshot is being
 *   streamed and nothing else is sent until it is installed.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Appends sent but not yet acknowledged, as (last index, bytes), bounded by count and bytes. */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private totalBytes = 0;

  constructor(
    private readonly msgsMax: number,
    private readonly bytesMax: number,
  ) {
    assert(msgsMax >= 1 && bytesMax >= 1, 'in-flight limits must be positive');
  }

  get count(): number {
    return this.lastIndexes.length;
  }
  get bytes(): number {
    return this.totalBytes;
  }

  full(): boolean {
    return this.lastIndexes.length >= this.msgsMax || this.totalBytes >= this.bytesMax;
  }

  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), 'sending past a full in-flight window');
    const prev = this.lastIndexes.at(-1);
    assert(
      prev === undefined || lastIndex > prev,
      'in-flight appends must have increasing indexes',
    );
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.totalBytes += bytes;
  }

  /** The follower acknowledged up to `index`: free every append ending at or below it. */
  freeTo(index: number): void {
    let k = 0;
    while (k < this.lastIndexes.length && (this.lastIndexes[k] as number) <= index) {
      this.totalBytes -= this.sizes[k] as number;
      k++;
    }
    this.lastIndexes.splice(0, k);
    this.sizes.splice(0, k);
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.totalBytes = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Probe state: an append is out and unanswered. */
  probeSent = false;
  /** Snapshot state: the snapshot index being sent and how many bytes were acknowledged. */
  pendingSnapshot = 0;
  snapshotOffset = 0;
  /** Heard from since the last check-quorum round (dissertation 6.2). */
  recentActive = false;
  /** Highest commit index sent to the follower in this term (so commit news is sent once). */
  sentCommit = 0;
  /** Highest heartbeat round the follower answered in this term (ReadIndex, leases). */
  ackedRound = 0;
  /** Highest commit hint sent to the follower in this term. */
  sentHint = 0;
  readonly inflights: Inflights;

  constructor(next: number, inflightMsgsMax: number, inflightBytesMax: number) {
    assert(next >= 1, 'next index starts at 1');
    this.next = next;
    this.inflights = new Inflights(inflightMsgsMax, inflightBytesMax);
  }

  /**
   * The commit index the follower has been told, or will work out alone: a hint it was sent
   * commits up to there once it holds the entries it acknowledged (if the hint is lost, the
   * next heartbeat tells it).
   */
  knownCommit(): number {
    return Math.max(this.sentCommit, Math.min(this.sentHint, this.match));
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.reset('probe');
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.reset('replicate');
  }

  becomeSnapshot(index: number): void {
    assert(index > this.match, 'a snapshot for a follower that already has it');
    this.reset('snapshot');
    this.pendingSnapshot = index;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotOffset = 0;
    this.inflights.reset();
  }

  /** The follower matches through `index`; returns whether that is news. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    this.inflights.freeTo(index);
    return updated;
  }

  /**
   * An append at `rejectedIndex` was refused; `hintNext` is where the leader's search for the
   * matching point resumes. Returns false for a stale rejection, which changes nothing.
   */
  maybeDecrTo(rejectedIndex: number, hintNext: number): boolean {
    if (this.state === 'replicate') {
      if (rejectedIndex <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejectedIndex) return false;
    this.next = Math.max(Math.min(rejectedIndex, hintNext), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /** Record an append of entries ending at `lastIndex` (none when lastIndex < next). */
  sentEntries(lastIndex: number, bytes: number): void {
    if (this.state === 'replicate' && lastIndex >= this.next) {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }
}
