/**
 * The write-ahead log seam: an append-only sequence of typed records, each numbered by a
 * sequence number (`seq`) that the log assigns in call order. Protocol-independent: a Raft
 * host can make seq equal its log index, a Multi-Paxos host its slot number.
 *
 * Hard state (Raft's term and vote, a Paxos acceptor's promise) is NOT kept here but in a
 * `HardStateStore`: `truncateSuffix` physically removes records, so a vote logged after the
 * entries being rewritten would vanish with them, and finding the newest one would need a
 * scan of the whole log. A separate two-slot file costs one extra fdatasync on the rare
 * batches that change it.
 */

/** A record to append. `type` is the caller's own tag (0..255), stored beside the payload. */
export interface WalEntry {
  readonly type: number;
  readonly payload: Uint8Array;
}

export interface WalRecord extends WalEntry {
  readonly seq: number;
}

export interface Wal {
  /** The lowest seq still held (records below were dropped by `dropPrefix`/`reset`). */
  firstSeq(): number;
  /** The seq the next appended record will get, counting appends already called. */
  nextSeq(): number;
  /**
   * Appends `entries` in order and resolves with the seq of the first once ALL are durable
   * (fdatasync returned). Appends called while a sync is running share the next one (group
   * commit). May wait before queuing when too many bytes are pending (backpressure); calls
   * still take effect in call order.
   */
  append(entries: readonly WalEntry[]): Promise<number>;
  /** The records with seq >= fromSeq, in order. Meant for startup, before appending. */
  read(fromSeq?: number): AsyncIterable<WalRecord>;
  /** Removes every record with seq >= fromSeq (firstSeq <= fromSeq <= nextSeq), durably. */
  truncateSuffix(fromSeq: number): Promise<void>;
  /**
   * Releases records below `beforeSeq` (after a snapshot covers them). Only whole segments
   * are deleted, so `firstSeq()` may stay below `beforeSeq`; the newest segment is kept.
   */
  dropPrefix(beforeSeq: number): Promise<void>;
  /** Discards every record and continues at `nextSeq` (after installing a newer snapshot). */
  reset(nextSeq: number): Promise<void>;
  /** Waits for queued work, then releases the files. Further calls throw. */
  close(): Promise<void>;
}

/** Hooks for the server's metrics (Prometheus histograms); must not throw. */
export interface WalMetrics {
  /** One fdatasync of `records` records (`bytes` bytes) took `durationMs`. */
  fsync?(durationMs: number, bytes: number, records: number): void;
}

/**
 * A record before the tail is damaged (not a torn write of the last, unacknowledged batch):
 * acknowledged data may be lost, so startup stops and names the place for the operator.
 */
export class WalCorruptionError extends Error {
  override readonly name = 'WalCorruptionError';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`WAL corrupt in ${file} at byte offset ${offset}: ${reason}`);
  }
}
