import { assert } from '../kernel/assert.ts';
import { OutputBuffer } from '../kernel/core.ts';
import { assertNodeId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';
import { type RaftOptions, validateRaftOptions } from './config.ts';
import type { RaftDurableState } from './durable.ts';
import { RaftLog } from './log.ts';
import { isMember } from './membership.ts';
import type { Progress } from './progress.ts';
import { ReadIndexTracker } from './read-index.ts';
import { SnapshotReceiver } from './snapshot.ts';
import type {
  DropReason,
  Entry,
  HardState,
  RaftConfig,
  RaftMsg,
  RaftTypes,
  Role,
  Snapshot,
} from './types.ts';

export interface RestoreOptions {
  /**
   * The index the host's state machine already reflects (its own durable state). Omit it for
   * an in-memory state machine: the core then re-delivers the snapshot and every committed
   * entry after it.
   */
  readonly appliedIndex?: number;
}

type Msg<C> = RaftMsg<C>;

const noDrops = (): Record<DropReason, number> => ({
  'stale-term': 0,
  'unknown-peer': 0,
  'stale-reply': 0,
  'leader-lease': 0,
  'snapshot-too-large': 0,
  'snapshot-out-of-order': 0,
});

/**
 * The state of a Raft node and its bookkeeping: hard state and its persistence, timers, the
 * log, delivery to the host, drop counters and the invariants checked after every input.
 * The protocol itself (node.ts) and the client API (core.ts) build on it.
 */
export abstract class RaftState<C> {
  readonly id: NodeId;
  protected readonly opts: RaftOptions<C>;
  protected readonly rng: Rng;
  protected readonly out = new OutputBuffer<RaftTypes<C>>();
  protected readonly raftLog: RaftLog<C>;
  protected readonly receiver: SnapshotReceiver;
  protected readonly reads: ReadIndexTracker;

  protected role: Role = 'follower';
  protected term: number;
  protected vote: NodeId;
  protected leader: NodeId = NO_NODE;
  protected persisted: HardState;
  protected config: RaftConfig;
  protected configIndex: number;
  protected applied: number;
  protected snapshotToDeliver: Snapshot | undefined;

  protected now = 0;
  protected electionDeadline = Number.POSITIVE_INFINITY;
  protected heartbeatDeadline = Number.POSITIVE_INFINITY;
  protected checkQuorumDeadline = Number.POSITIVE_INFINITY;
  /** Leader: when held-back commit notices go out (see `commitNoticeDelayMs`). */
  protected commitNoticeDeadline = Number.POSITIVE_INFINITY;
  protected lastHeardFromLeaderAt = Number.NEGATIVE_INFINITY;
  /** Local time of the first input; timers are drawn from it. */
  protected startedAt: number | undefined;
  /** Restarted with a term: it may have been following a leader whose lease still runs. */
  protected readonly recovered: boolean;
  protected votes = new Map<NodeId, boolean>();
  protected progress = new Map<NodeId, Progress>();
  protected transferee: NodeId = NO_NODE;
  protected transferDeadline = Number.POSITIVE_INFINITY;
  /** Leader: appends are due; sent together when the batch is handed out (batching). */
  protected readonly appendsDue = new Set<NodeId>();
  /** Leader, commitHints 'origin': follower -> highest index of a proposal it forwarded. */
  protected readonly hintsWanted = new Map<NodeId, number>();
  /** Leader: the highest index it hinted in this term; reads wait for it (see `readIndex`). */
  protected hintedIndex = 0;
  protected readonly drops = noDrops();
  /**
   * Highest log index this node's disk holds (every batch that wrote up to it was advanced).
   * A leader sends appends before its own write is durable (Ready's `early`), so it counts
   * itself towards commit only up to here.
   */
  protected stableIndex: number;
  /** Term of the newest hard state the disk holds: a leader sends early only in this term. */
  protected durableTerm: number;
  /**
   * Follower: this log matches the current leader's through here (its appends that succeeded
   * say so); forgotten when the leader or term changes.
   */
  protected leaderMatch = 0;
  /** Follower: the highest commit hint from the current leader (see `CommitHintMsg`). */
  protected hintedCommit = 0;
  /** Last index written, and term saved, by the batch being filled and by the batch out. */
  private fillingLastIndex = 0;
  private outLastIndex = 0;
  private fillingTerm = 0;
  private outTerm = 0;

  protected constructor(
    id: NodeId,
    durable: RaftDurableState<C>,
    opts: RaftOptions<C>,
    rng: Rng,
    restoreOpts: RestoreOptions,
  ) {
    assertNodeId(id);
    this.id = id;
    this.opts = validateRaftOptions(opts);
    this.rng = rng;
    this.raftLog = new RaftLog(durable.snapshot, durable.entries, durable.hardState.commit);
    this.receiver = new SnapshotReceiver(opts.snapshotBytesMax);
    this.reads = new ReadIndexTracker(
      opts.pendingReadsMax,
      opts.electionTimeoutMinMs - opts.leaseDriftMarginMs,
    );
    this.term = durable.hardState.term;
    this.vote = durable.hardState.vote;
    this.persisted = durable.hardState;
    this.durableTerm = durable.hardState.term;
    this.stableIndex = this.raftLog.lastIndex;
    this.recovered = durable.hardState.term > 0;
    assert(this.raftLog.lastTerm <= this.term, 'durable log holds a term above the durable term');
    this.config = this.raftLog.config();
    this.configIndex = this.raftLog.configIndex();
    const snapIndex = this.raftLog.snapshotIndex;
    const applied = restoreOpts.appliedIndex;
    if (applied === undefined) {
      this.applied = snapIndex;
      this.snapshotToDeliver = snapIndex > 0 ? this.raftLog.snapshot : undefined;
    } else {
      assert(
        applied >= snapIndex && applied <= this.raftLog.commit,
        `appliedIndex ${applied} outside [snapshot ${snapIndex}, commit ${this.raftLog.commit}]`,
      );
      this.applied = applied;
    }
    // The timer is drawn at the first input, when the local time is known: due at once.
    this.electionDeadline = this.promotable() ? 0 : Number.POSITIVE_INFINITY;
  }

  protected setNow(now: number): void {
    assert(Number.isFinite(now), 'now must be a finite number of milliseconds');
    this.now = Math.max(this.now, now);
    if (this.startedAt === undefined) {
      this.startedAt = this.now;
      this.resetElectionTimer(); // a restarted node waits a full timeout from its restart
    }
  }

  protected resetElectionTimer(): void {
    const { electionTimeoutMinMs: lo, electionTimeoutMaxMs: hi } = this.opts;
    this.electionDeadline = this.promotable()
      ? this.now + this.rng.range(lo, hi)
      : Number.POSITIVE_INFINITY;
  }

  /**
   * Whether this node may stand for election. A voter may. So may a node the newest,
   * still uncommitted configuration removes (dissertation 4.2.2): it may be the only one
   * holding that entry — a leader that removed itself and then lost its quorum — and the
   * remaining voters, whose logs are behind it, would never elect anyone else. Its own
   * vote does not count (tallies count the configuration's voters only), and once the
   * entry commits it stops.
   */
  protected promotable(): boolean {
    if (this.config.voters.includes(this.id)) return true;
    return this.configIndex > this.raftLog.commit && !isMember(this.config, this.id);
  }

  protected drop(from: NodeId, m: Msg<C>, reason: DropReason): void {
    this.drops[reason]++;
    this.out.emit({ type: 'dropped', from, msg: m.type, reason });
  }

  protected commitTo(index: number): void {
    if (this.raftLog.commitTo(index)) {
      this.out.emit({ type: 'committed', index, term: this.raftLog.term(index) as number });
    }
  }

  protected setRole(role: Role, leader: NodeId): void {
    const changed = role !== this.role || leader !== this.leader;
    if (leader !== this.leader) this.forgetLeaderMatch();
    this.role = role;
    this.leader = leader;
    if (changed) this.out.emit({ type: 'roleChanged', role, term: this.term, leader });
  }

  protected persistEntries(entries: readonly Entry<C>[]): void {
    this.flushHardState(); // the term that makes these entries valid is durable first
    this.out.persist({ kind: 'entries', entries });
    const first = (entries[0] as Entry<C>).index;
    this.logRewrittenFrom(first);
    this.fillingLastIndex = first + entries.length - 1;
  }

  /** The log ends at `index` (a snapshot replaced it) once this batch is durable. */
  protected persistLogReplaced(index: number): void {
    this.logRewrittenFrom(index + 1);
    this.fillingLastIndex = index;
  }

  protected forgetLeaderMatch(): void {
    this.leaderMatch = 0;
    this.hintedCommit = 0;
  }

  /** Entries from `index` on are being overwritten: what the disk held there no longer counts. */
  private logRewrittenFrom(index: number): void {
    this.leaderMatch = Math.min(this.leaderMatch, index - 1);
    this.stableIndex = Math.min(this.stableIndex, index - 1);
    this.outLastIndex = Math.min(this.outLastIndex, index - 1);
  }

  /**
   * Sends a leader's append, heartbeat or snapshot chunk early (Ready rule 3) once its term
   * is durable; until then it waits for the batch that saves the term (a lone voter elects
   * itself within one input, and a learner must not hold entries of a term its leader's disk
   * does not know: after a crash the leader could win that term again and write others).
   */
  protected sendAsLeader(to: NodeId, msg: Msg<C>): void {
    if (this.durableTerm === this.term) this.out.sendEarly(to, msg);
    else this.out.send(to, msg);
  }

  /** A batch was handed to the host: what it writes is durable at `batchDurable`. */
  protected batchCut(): void {
    this.outLastIndex = this.fillingLastIndex;
    this.outTerm = this.fillingTerm;
    this.fillingLastIndex = 0;
    this.fillingTerm = 0;
  }

  /** The batch out with the host is durable; returns whether the stable index moved. */
  protected batchDurable(): boolean {
    this.durableTerm = Math.max(this.durableTerm, this.outTerm);
    const moved = this.outLastIndex > this.stableIndex;
    if (moved) this.stableIndex = this.outLastIndex;
    this.outLastIndex = 0;
    this.outTerm = 0;
    return moved;
  }

  protected flushHardState(): void {
    const p = this.persisted;
    const commit = this.raftLog.commit;
    if (p.term === this.term && p.vote === this.vote && p.commit === commit) return;
    this.persisted = { term: this.term, vote: this.vote, commit };
    this.out.persist({ kind: 'hardState', state: this.persisted });
    this.fillingTerm = this.term;
  }

  protected hasWorkForNextBatch(): boolean {
    return (
      this.snapshotToDeliver !== undefined ||
      this.applied < this.raftLog.commit ||
      (this.role === 'leader' && (this.appendsDue.size > 0 || this.reads.needsRound()))
    );
  }

  /** Hand committed entries to the host in order, at most applyBatchEntriesMax (or one snapshot) per batch. */
  protected queueDeliveries(): void {
    const snap = this.snapshotToDeliver;
    if (snap !== undefined) {
      this.snapshotToDeliver = undefined;
      this.out.deliver({ kind: 'snapshot', snapshot: snap });
      return;
    }
    const upTo = Math.min(this.raftLog.commit, this.applied + this.opts.applyBatchEntriesMax);
    while (this.applied < upTo) {
      this.applied++;
      const entry = this.raftLog.entry(this.applied);
      assert(entry !== undefined, `committed entry ${this.applied} is missing from the log`);
      this.out.deliver({ kind: 'entry', entry });
    }
  }

  protected finish(): void {
    this.flushHardState();
    this.checkInvariants();
  }

  protected checkInvariants(): void {
    const log = this.raftLog;
    assert(log.commit <= log.lastIndex, 'commit index past the last entry');
    assert(this.stableIndex <= log.lastIndex, 'stable index past the last entry');
    assert(this.applied <= log.commit, 'applied past the commit index');
    assert(log.lastTerm <= this.term, 'log holds a term above the current term');
    assert(
      this.role !== 'leader' || (this.leader === this.id && this.vote === this.id),
      'leader state is inconsistent',
    );
    assert(this.role === 'leader' || this.progress.size === 0, 'a non-leader tracks progress');
    assert(
      this.persisted.term === this.term && this.persisted.vote === this.vote,
      'hard state not queued for persistence',
    );
  }
}
