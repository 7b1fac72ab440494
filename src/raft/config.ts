import { assert } from '../kernel/assert.ts';

/** Which followers a leader sends commit hints (see `RaftOptions.commitHints`). */
export type CommitHints = 'origin' | 'all' | 'off';

/** Tuning of one Raft node. Every queue and window has a maximum here. */
export interface RaftOptions<C> {
  /** Election timeout, re-drawn uniformly in [min, max] at every reset (paper section 5.2). */
  readonly electionTimeoutMinMs: number;
  readonly electionTimeoutMaxMs: number;
  /** Leader heartbeat interval; must be well below the minimum election timeout. */
  readonly heartbeatIntervalMs: number;
  /**
   * How long the leader may hold back telling an idle follower a new commit index, hoping to
   * carry it on the next append instead of a message of its own (0: at once, as etcd does).
   * Followers apply that much later under light load; nothing waits on it for safety, and
   * clients are answered by the leader. At most heartbeatIntervalMs.
   */
  readonly commitNoticeDelayMs: number;
  /**
   * Which followers the leader sends commit hints (`CommitHintMsg`): 'origin', the one that
   * forwarded a proposal, until the entry commits; 'all', every follower whenever a hint is
   * news (followers apply sooner, at a message per follower per change; the simulator uses it
   * to exercise hints everywhere); 'off', none.
   */
  readonly commitHints: CommitHints;
  /** Campaign in two phases so a node that cannot win does not raise terms (dissertation 9.6). */
  readonly preVote: boolean;
  /** A leader that has not heard from a quorum for a minimum election timeout steps down (6.2). */
  readonly checkQuorum: boolean;
  /** Serve reads under a leader lease without a heartbeat round (6.4.1); needs checkQuorum. */
  readonly leaseReads: boolean;
  /** Clock-drift allowance subtracted from the lease (the lease is electionTimeoutMinMs minus this). */
  readonly leaseDriftMarginMs: number;
  /** Entries appended by the leader but not yet committed; proposals beyond are rejected. */
  readonly uncommittedEntriesMax: number;
  /** AppendEntries messages in flight to one follower in replicate state. */
  readonly inflightMsgsMax: number;
  /** Entry bytes (by `sizeOf`) in flight to one follower. */
  readonly inflightBytesMax: number;
  readonly appendEntriesMax: number;
  /** Bytes per AppendEntries; one entry is always sent even if larger. */
  readonly appendBytesMax: number;
  /** Entries (or one snapshot) handed to the host per batch for applying. */
  readonly applyBatchEntriesMax: number;
  /** Reads waiting for their heartbeat round or for the leader's first commit. */
  readonly pendingReadsMax: number;
  readonly snapshotChunkBytes: number;
  /** Largest snapshot accepted from the application or from a leader. */
  readonly snapshotBytesMax: number;
  /** Byte size of a command for accounting; need not be exact, must be positive and stable. */
  readonly sizeOf: (data: C) => number;
  /**
   * Deliberate bugs, for tests only: they exist to prove that the simulator's checks catch
   * a broken Raft. Never set them anywhere else.
   */
  readonly unsafeTestingFaults?: RaftTestingFaults;
}

export interface RaftTestingFaults {
  /**
   * Commit an entry of an earlier term as soon as a majority holds it (the rule the paper's
   * figure 8 shows to be unsafe: such an entry can still be overwritten).
   */
  readonly commitPriorTermsByCounting?: boolean;
  /** Grant votes without the log up-to-date check (section 5.4.1's election restriction). */
  readonly voteIgnoringLogs?: boolean;
  /**
   * Serve linearizable reads at the commit index even when a commit hint let a follower
   * answer a write above it (see `readIndex`): a read can miss a write already acknowledged.
   */
  readonly readsIgnoringHints?: boolean;
}

/** etcd-like defaults: 150–300 ms elections and 50 ms heartbeats, as in the paper's section 9. */
export function defaultRaftOptions<C>(sizeOf: (data: C) => number = () => 64): RaftOptions<C> {
  return {
    electionTimeoutMinMs: 150,
    electionTimeoutMaxMs: 300,
    heartbeatIntervalMs: 50,
    commitNoticeDelayMs: 0,
    commitHints: 'origin',
    preVote: true,
    checkQuorum: true,
    leaseReads: false,
    leaseDriftMarginMs: 15,
    uncommittedEntriesMax: 10_000,
    inflightMsgsMax: 64,
    inflightBytesMax: 4 * 1024 * 1024,
    appendEntriesMax: 256,
    appendBytesMax: 1024 * 1024,
    applyBatchEntriesMax: 256,
    pendingReadsMax: 4096,
    snapshotChunkBytes: 256 * 1024,
    snapshotBytesMax: 1024 * 1024 * 1024,
    sizeOf,
  };
}

function positiveInt(value: number, name: string): void {
  assert(
    Number.isSafeInteger(value) && value >= 1,
    `${name} must be a positive integer, got ${value}`,
  );
}

/** Throws InvariantError on a configuration that could not work; returns the options otherwise. */
export function validateRaftOptions<C>(o: RaftOptions<C>): RaftOptions<C> {
  positiveInt(o.electionTimeoutMinMs, 'electionTimeoutMinMs');
  positiveInt(o.electionTimeoutMaxMs, 'electionTimeoutMaxMs');
  positiveInt(o.heartbeatIntervalMs, 'heartbeatIntervalMs');
  positiveInt(o.uncommittedEntriesMax, 'uncommittedEntriesMax');
  positiveInt(o.inflightMsgsMax, 'inflightMsgsMax');
  positiveInt(o.inflightBytesMax, 'inflightBytesMax');
  positiveInt(o.appendEntriesMax, 'appendEntriesMax');
  positiveInt(o.appendBytesMax, 'appendBytesMax');
  positiveInt(o.applyBatchEntriesMax, 'applyBatchEntriesMax');
  positiveInt(o.pendingReadsMax, 'pendingReadsMax');
  positiveInt(o.snapshotChunkBytes, 'snapshotChunkBytes');
  positiveInt(o.snapshotBytesMax, 'snapshotBytesMax');
  assert(
    o.commitHints === 'origin' || o.commitHints === 'all' || o.commitHints === 'off',
    `commitHints must be 'origin', 'all' or 'off', got ${String(o.commitHints)}`,
  );
  assert(
    o.electionTimeoutMaxMs >= o.electionTimeoutMinMs,
    'electionTimeoutMaxMs must be >= electionTimeoutMinMs',
  );
  assert(
    o.heartbeatIntervalMs < o.electionTimeoutMinMs,
    'heartbeatIntervalMs must be below electionTimeoutMinMs, or followers time out between heartbeats',
  );
  assert(
    Number.isSafeInteger(o.commitNoticeDelayMs) &&
      o.commitNoticeDelayMs >= 0 &&
      o.commitNoticeDelayMs <= o.heartbeatIntervalMs,
    'commitNoticeDelayMs must be in [0, heartbeatIntervalMs]',
  );
  assert(!o.leaseReads || o.checkQuorum, 'leaseReads needs checkQuorum: the lease rests on it');
  assert(
    Number.isSafeInteger(o.leaseDriftMarginMs) &&
      o.leaseDriftMarginMs >= 0 &&
      o.leaseDriftMarginMs < o.electionTimeoutMinMs,
    'leaseDriftMarginMs must be in [0, electionTimeoutMinMs)',
  );
  assert(typeof o.sizeOf === 'function', 'sizeOf must be a function');
  return o;
}
