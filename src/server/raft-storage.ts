import { join } from 'node:path';
import { assert, unreachable } from '../kernel/assert.ts';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { KvCommand } from '../kv/machine.ts';
import { applyPersist, initialDurableState, type RaftDurableState } from '../raft/durable.ts';
import type { Entry, HardState, RaftConfig, RaftPersist, SnapshotMeta } from '../raft/types.ts';
import { filePacker } from '../runtime/msgpack.ts';
import type { FileWal } from '../runtime/storage/file-wal.ts';
import { FileHardStateStore } from '../runtime/storage/hard-state.ts';
import { FileSnapshotStore } from '../runtime/storage/snapshot.ts';
import type { WalMetrics } from '../runtime/storage/wal.ts';
import { claimDirectory, openWal, readSnapshotData, saveSnapshotData } from './storage-common.ts';

/**
 * A Raft node's disk: hard state (term, vote, commit) in a two-slot file, log entries in the
 * WAL with the WAL sequence number equal to the log index, snapshots in an atomic store.
 *
 *     <dir>/node.json    which node this directory belongs to (refuses another id)
 *     <dir>/hardstate    FileHardStateStore
 *     <dir>/wal/         FileWal segments, one record per entry
 *     <dir>/snapshots/   FileSnapshotStore; meta = SnapshotMeta, data = the KV image
 *
 * `persist` writes one Ready batch and resolves once its log entries, snapshot, term and
 * vote are durable. Crash safety: the core orders a batch so every prefix is safe to restart
 * from. A hard state that changes term or vote is therefore written before anything after it
 * (the log must never hold a term above the durable term), and after the entries before it
 * (its commit may count them). All entries of a batch go to the
 * WAL as one append, so a batch costs one fdatasync however many proposals it carries.
 *
 * A commit-only hard state is saved in the background, off the write path, once the entries
 * before it in its batch are durable: the commit index is a hint that recovery clamps to the
 * durable log, which is safe only if that log holds the entries the index counted. Saved
 * first, a follower's commit over entries that overwrite a conflicting suffix would, after
 * a crash between the two writes, count the old suffix as committed (the storage conformance
 * test checks every entry a restored commit covers). A node that restarts with an older
 * commit re-learns it from the leader (an entry is committed by being durable on a quorum, not
 * by anyone's record of the index; etcd does not sync it before applying either). Saves are
 * coalesced (the newest waiting one wins) and spaced COMMIT_SAVE_SPACING_MS apart (each
 * is a disk flush, which under load would compete with the WAL's), stay in order with
 * term/vote saves, and each is still durable before the next, so the two-slot store never
 * has an unsynced slot under a newer one. A failed background save fails the next `persist`
 * (or `close`).
 */
export interface RaftStorageOptions {
  readonly dir: string;
  readonly id: NodeId;
  /** The configuration a brand-new node starts under (empty for a node that will be added). */
  readonly bootstrap: RaftConfig;
  readonly walMetrics?: WalMetrics;
  readonly segmentBytesMax?: number;
  readonly recordBytesMax?: number;
}

const ENTRY_RECORD = 1;
const COMMIT_SAVE_SPACING_MS = 50;

type KvEntry = Entry<KvCommand>;

export class RaftStorage {
  private savedHard: HardState;
  /** The newest commit-only hard state not yet handed to the store. */
  private commitWanted: HardState | undefined;
  private commitSaving: Promise<void> | undefined;
  /** The snapshot being written in the background (compaction), then the next, in order. */
  private snapshotSaving: Promise<void> | undefined;
  private backgroundFailure: unknown;
  /** The term of every entry the WAL holds after the snapshot, as [first index, term] runs. */
  private readonly terms = new TermRuns();

  private constructor(
    private readonly wal: FileWal,
    private readonly hard: FileHardStateStore,
    private readonly snapshots: FileSnapshotStore,
    /** The durable state as restored; owned by the caller after `open`. */
    readonly restored: RaftDurableState<KvCommand>,
    /** Whether this directory held no state before (a first boot). */
    readonly fresh: boolean,
  ) {
    this.savedHard = restored.hardState;
    this.terms.reset(restored.snapshot.meta.index + 1);
    this.terms.append(restored.entries);
  }

  /**
   * Opens the directory and rebuilds the durable state: hard state + newest snapshot + the
   * WAL records after it. Throws WalCorruptionError (naming file and offset) on damage before
   * the WAL's tail; a torn last record is cut off by the WAL itself.
   */
  static async open(options: RaftStorageOptions): Promise<RaftStorage> {
    const fresh = await claimDirectory(options.dir, { id: options.id });
    const hard = await FileHardStateStore.open(options.dir);
    const snapshots = await FileSnapshotStore.open(join(options.dir, 'snapshots'));
    const wal = await openWal(options.dir, options);
    try {
      const durable = await restoreDurable(wal, hard, snapshots, options);
      return new RaftStorage(wal, hard, snapshots, durable, fresh);
    } catch (err) {
      await wal.close();
      await hard.close();
      throw err;
    }
  }

  /** Writes a batch's persist items in order; resolves once every one is durable. */
  async persist(items: readonly RaftPersist<KvCommand>[]): Promise<void> {
    this.throwIfBackgroundFailed();
    const pending: Promise<unknown>[] = [];
    let run: KvEntry[] = [];
    let commitOnly: HardState | undefined;
    const flushRun = () => {
      pending.push(...this.appendEntries(run));
      run = [];
    };
    for (const item of items) {
      switch (item.kind) {
        case 'hardState': {
          const prev = this.savedHard;
          this.savedHard = item.state;
          if (prev.term !== item.state.term || prev.vote !== item.state.vote) {
            flushRun();
            // A newer term or vote supersedes any commit-only save still waiting.
            commitOnly = undefined;
            this.commitWanted = undefined;
            // Its commit may count entries of this batch (a follower's commit covers what it
            // was just sent): they are durable first (see the class comment).
            await Promise.all(pending.splice(0));
            await this.hard.save(encodeHardState(item.state));
          } else {
            commitOnly = item.state;
          }
          break;
        }
        case 'entries':
          run = mergeEntries(run, item.entries);
          break;
        case 'snapshot': {
          flushRun();
          const { meta, data } = item.snapshot;
          if (this.terms.termAt(meta.index, this.wal.nextSeq()) === meta.term) {
            this.compactLater(meta, data);
          } else {
            await Promise.all(pending.splice(0));
            await this.snapshotSaving;
            this.throwIfBackgroundFailed();
            await this.replaceLog(meta, data);
          }
          break;
        }
        default:
          unreachable(item, 'persist item');
      }
    }
    flushRun();
    await Promise.all(pending);
    if (commitOnly !== undefined) this.saveCommitLater(commitOnly);
  }

  async close(): Promise<void> {
    await this.commitSaving;
    await this.snapshotSaving;
    await this.wal.close();
    await this.hard.close();
    this.throwIfBackgroundFailed();
  }

  private saveCommitLater(state: HardState): void {
    this.commitWanted = state;
    this.commitSaving ??= this.drainCommitSaves();
  }

  private async drainCommitSaves(): Promise<void> {
    try {
      for (let s = this.commitWanted; s !== undefined; s = this.commitWanted) {
        this.commitWanted = undefined;
        await this.hard.save(encodeHardState(s));
        await new Promise((wake) => setTimeout(wake, COMMIT_SAVE_SPACING_MS));
      }
    } catch (err) {
      this.backgroundFailure ??= err;
    } finally {
      this.commitSaving = undefined;
    }
  }

  private throwIfBackgroundFailed(): void {
    if (this.backgroundFailure !== undefined) throw this.backgroundFailure;
  }

  private appendEntries(entries: readonly KvEntry[]): Promise<unknown>[] {
    const first = entries[0];
    if (first === undefined) return [];
    const calls: Promise<unknown>[] = [];
    if (first.index < this.wal.nextSeq()) calls.push(this.wal.truncateSuffix(first.index));
    assert(
      first.index === this.wal.nextSeq(),
      `entries from ${first.index} but the WAL continues at ${this.wal.nextSeq()}`,
    );
    calls.push(
      this.wal.append(entries.map((e) => ({ type: ENTRY_RECORD, payload: filePacker.pack(e) }))),
    );
    this.terms.append(entries);
    return calls;
  }

  /**
   * A snapshot whose last entry the WAL holds (a compaction, or a leader's snapshot of a log
   * this node has) only lets the WAL shrink: every entry it covers is in the WAL, durable by
   * the time this batch is, so nothing waits for it. It is written in the background, in order
   * with other snapshots, and the WAL is trimmed once it is durable. A crash before then
   * restarts from the previous snapshot and the longer WAL, which hold the same log
   * (`loadEntries` skips what a snapshot covers). Before, the batch waited ~10 ms for
   * a multi-megabyte write and its fsyncs while no message left the node.
   */
  private compactLater(meta: SnapshotMeta, data: Uint8Array): void {
    const previous = this.snapshotSaving;
    const saving = (async () => {
      await previous;
      try {
        await saveSnapshotData(this.snapshots, filePacker.pack(meta), data);
        await this.wal.dropPrefix(meta.index + 1);
        this.terms.dropBefore(meta.index + 1);
      } catch (err) {
        this.backgroundFailure ??= err;
      }
    })();
    this.snapshotSaving = saving;
    void saving.finally(() => {
      if (this.snapshotSaving === saving) this.snapshotSaving = undefined;
    });
  }

  /**
   * A leader's snapshot of a log this node does not hold replaces the log: the snapshot is
   * durable before anything acknowledges it, then the WAL restarts after it.
   */
  private async replaceLog(meta: SnapshotMeta, data: Uint8Array): Promise<void> {
    await saveSnapshotData(this.snapshots, filePacker.pack(meta), data);
    await this.wal.reset(meta.index + 1);
    this.terms.reset(meta.index + 1);
  }
}

/**
 * Joins a batch's consecutive entry items into one run for a single WAL append. A later
 * item that starts inside the run overwrites the run's suffix from there, as the WAL would.
 */
function mergeEntries(run: KvEntry[], next: readonly KvEntry[]): KvEntry[] {
  const head = next[0];
  const start = run[0];
  if (head === undefined) return run;
  // A later item from before the run (a newer leader's conflicting append) supersedes it all.
  if (start === undefined || head.index <= start.index) return [...next];
  assert(
    head.index <= start.index + run.length,
    `entries from ${head.index} leave a gap after ${start.index + run.length - 1}`,
  );
  run.length = head.index - start.index;
  for (const e of next) run.push(e);
  return run;
}

/**
 * Log terms as runs: one [first index, term] pair per term the log holds, a handful at most,
 * so the snapshot path can tell whether the WAL holds the snapshot's last entry without
 * reading the WAL back or mirroring the log in memory.
 */
class TermRuns {
  private runs: [number, number][] = [];
  private first = 1;

  reset(first: number): void {
    this.runs = [];
    this.first = first;
  }

  append(entries: readonly KvEntry[]): void {
    const head = entries[0];
    if (head === undefined) return;
    while (this.runs.length > 0 && (this.runs.at(-1) as [number, number])[0] >= head.index) {
      this.runs.pop();
    }
    for (const e of entries) {
      if (this.runs.at(-1)?.[1] !== e.term) this.runs.push([e.index, e.term]);
    }
  }

  /** The term at `index`, if it lies in [first, nextIndex). */
  termAt(index: number, nextIndex: number): number | undefined {
    if (index < this.first || index >= nextIndex) return undefined;
    let term: number | undefined;
    for (const [start, t] of this.runs) {
      if (start > index) break;
      term = t;
    }
    return term;
  }

  dropBefore(first: number): void {
    while (this.runs.length > 1 && (this.runs[1] as [number, number])[0] <= first)
      this.runs.shift();
    this.first = Math.max(this.first, first);
  }
}

async function restoreDurable(
  wal: FileWal,
  hard: FileHardStateStore,
  snapshots: FileSnapshotStore,
  options: RaftStorageOptions,
): Promise<RaftDurableState<KvCommand>> {
  const durable = initialDurableState<KvCommand>(options.bootstrap);
  const hs = hard.load();
  if (hs !== undefined) durable.hardState = decodeHardState(hs);
  const info = snapshots.latest();
  if (info !== undefined) {
    const meta = filePacker.unpack(info.meta) as SnapshotMeta;
    const data = await readSnapshotData(snapshots, info);
    applyPersist(durable, { kind: 'snapshot', snapshot: { meta, data } });
    durable.entries = [];
  }
  await loadEntries(wal, durable);
  const last = durable.snapshot.meta.index + durable.entries.length;
  const commit = Math.max(durable.snapshot.meta.index, Math.min(durable.hardState.commit, last));
  durable.hardState = { ...durable.hardState, commit };
  const lastTerm = durable.entries.at(-1)?.term ?? durable.snapshot.meta.term;
  if (lastTerm > durable.hardState.term) {
    throw new Error(
      `${options.dir}: the log holds term ${lastTerm} above the durable term ${durable.hardState.term}`,
    );
  }
  return durable;
}

/**
 * Reads the entries after the snapshot. The WAL may still hold a log the snapshot replaced
 * (a crash between installing a leader's snapshot and resetting the WAL): its records are
 * kept only if the WAL's entry at the snapshot index has the snapshot's term, or the WAL
 * starts right after the snapshot; otherwise the WAL is reset to continue after it.
 */
async function loadEntries(wal: FileWal, durable: RaftDurableState<KvCommand>): Promise<void> {
  const snap = durable.snapshot.meta;
  const from = snap.index + 1;
  if (wal.firstSeq() > from) {
    throw new Error(
      `WAL starts at index ${wal.firstSeq()} but the newest snapshot ends at ${snap.index}: entries are missing`,
    );
  }
  let consistent = wal.firstSeq() === from;
  for await (const record of wal.read(Math.max(wal.firstSeq(), snap.index))) {
    const entry = decodeEntry(record.payload);
    assert(entry.index === record.seq, `WAL record ${record.seq} holds entry ${entry.index}`);
    if (entry.index === snap.index) {
      consistent = entry.term === snap.term;
      continue;
    }
    if (!consistent) break;
    durable.entries.push(entry);
  }
  if (!consistent || wal.nextSeq() < from) {
    durable.entries = [];
    await wal.reset(from);
  }
}

function encodeHardState(state: HardState): Uint8Array {
  return filePacker.pack([state.term, state.vote, state.commit]);
}

function decodeHardState(bytes: Uint8Array): HardState {
  const raw = filePacker.unpack(bytes);
  assert(
    Array.isArray(raw) && raw.length === 3 && raw.every((n) => Number.isSafeInteger(n)),
    'hard state record is malformed',
  );
  const [term, vote, commit] = raw as [number, number, number];
  return { term, vote: vote === 0 ? NO_NODE : vote, commit };
}

function decodeEntry(payload: Uint8Array): KvEntry {
  return filePacker.unpack(payload) as KvEntry;
}
