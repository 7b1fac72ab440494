import { assert } from '../kernel/assert.ts';
import type { Entry, RaftConfig, Snapshot } from './types.ts';

/** Read-only view of a node's log, for invariant checkers, the visualizer and tests. */
export interface RaftLogView<C> {
  /** Index and term of the last compacted entry (0, 0 before any snapshot). */
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  /** First index still held as an entry (snapshotIndex + 1). */
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Term of entry `index`: known for snapshotIndex..lastIndex, undefined outside. */
  term(index: number): number | undefined;
  entry(index: number): Entry<C> | undefined;
}

/** Bytes an entry counts for in flow control: the command's size, a small constant otherwise. */
export function entryBytes<C>(entry: Entry<C>, sizeOf: (data: C) => number): number {
  return entry.kind === 'normal' ? Math.max(1, sizeOf(entry.data)) : 16;
}

export type AppendOutcome =
  /** The log now matches the leader's through `lastNewIndex`; `written` must be persisted. */
  | {
      readonly ok: true;
      readonly lastNewIndex: number;
      readonly written: readonly Entry<unknown>[];
    }
  | { readonly ok: false; readonly hintIndex: number; readonly hintTerm: number };

/**
 * The in-memory log: a snapshot (the compacted prefix) followed by entries, plus the commit
 * index. It mirrors what is durable: every change it makes is also returned (or emitted by the
 * core) as a persist item. Terms never decrease along the log, and the commit index never
 * passes lastIndex nor moves back.
 */
export class RaftLog<C> implements RaftLogView<C> {
  private entries: Entry<C>[];
  private snap: Snapshot;
  /** Indexes of config entries in `entries`, ascending, so the current config is O(1). */
  private configIndexes: number[] = [];
  private committed: number;

  constructor(snapshot: Snapshot, entries: readonly Entry<C>[], commit: number) {
    this.snap = snapshot;
    this.entries = [];
    for (const e of entries) this.push(e);
    this.committed = Math.max(commit, snapshot.meta.index);
    assert(this.committed <= this.lastIndex, 'restored commit index is past the last entry');
  }

  get snapshot(): Snapshot {
    return this.snap;
  }
  get snapshotIndex(): number {
    return this.snap.meta.index;
  }
  get snapshotTerm(): number {
    return this.snap.meta.term;
  }
  get firstIndex(): number {
    return this.snap.meta.index + 1;
  }
  get lastIndex(): number {
    return this.snap.meta.index + this.entries.length;
  }
  get lastTerm(): number {
    return this.entries.at(-1)?.term ?? this.snap.meta.term;
  }
  get commit(): number {
    return this.committed;
  }

  term(index: number): number | undefined {
    if (index === this.snap.meta.index) return this.snap.meta.term;
    return this.entry(index)?.term;
  }

  entry(index: number): Entry<C> | undefined {
    if (index <= this.snap.meta.index) return undefined;
    return this.entries[index - this.snap.meta.index - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Election restriction (paper section 5.4.1): is (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  /** The configuration in force: the latest config entry, appended or committed (dissertation 4.1). */
  config(): RaftConfig {
    const at = this.configIndexes.at(-1);
    if (at === undefined) return this.snap.meta.config;
    const e = this.entry(at);
    assert(e?.kind === 'config', 'config index points at a non-config entry');
    return e.config;
  }

  /** Index of the latest config entry, or the snapshot index when the snapshot holds it. */
  configIndex(): number {
    return this.configIndexes.at(-1) ?? this.snap.meta.index;
  }

  /** The configuration at `index` (for a snapshot taken there). */
  configAt(index: number): RaftConfig {
    assert(index >= this.snap.meta.index, 'configAt below the snapshot');
    for (let k = this.configIndexes.length - 1; k >= 0; k--) {
      const at = this.configIndexes[k] as number;
      const e = this.entry(at);
      if (at <= index && e?.kind === 'config') return e.config;
    }
    return this.snap.meta.config;
  }

  /**
   * AppendEntries receiver, steps 2–4 of figure 2: check (prevIndex, prevTerm), truncate the
   * first conflicting suffix and append what is new. Never truncates a committed entry.
   */
  tryAppend(prevIndex: number, prevTerm: number, entries: readonly Entry<C>[]): AppendOutcome {
    if (!this.matchTerm(prevIndex, prevTerm)) return { ok: false, ...this.conflictHint(prevIndex) };
    let k = 0;
    while (k < entries.length) {
      const e = entries[k] as Entry<C>;
      const mine = this.term(e.index);
      if (mine === undefined || mine !== e.term) break;
      k++;
    }
    const written = entries.slice(k);
    if (written.length > 0) this.append(written);
    return { ok: true, lastNewIndex: prevIndex + entries.length, written };
  }

  /** Fast backtracking hint (section 5.3): the first index of our term at prevIndex, or our end. */
  private conflictHint(prevIndex: number): { hintIndex: number; hintTerm: number } {
    if (prevIndex > this.lastIndex) return { hintIndex: this.lastIndex + 1, hintTerm: 0 };
    const term = this.term(prevIndex);
    assert(term !== undefined, 'conflict below the snapshot: compacted entries are committed');
    let first = prevIndex;
    while (first - 1 > this.snap.meta.index && this.term(first - 1) === term) first--;
    return { hintIndex: first, hintTerm: term };
  }

  /** The last index holding `term` at or below `upTo`, or 0 if none is in the log. */
  lastIndexOfTerm(term: number, upTo: number): number {
    for (let i = Math.min(upTo, this.lastIndex); i >= this.snap.meta.index; i--) {
      const t = this.term(i) as number;
      if (t === term) return i;
      if (t < term) return 0;
    }
    return 0;
  }

  /** Append entries that start at or below lastIndex+1, dropping any suffix they replace. */
  append(entries: readonly Entry<C>[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(
      first.index > this.committed,
      `append at ${first.index} would overwrite committed entries`,
    );
    assert(
      first.index <= this.lastIndex + 1,
      `append at ${first.index} leaves a gap after ${this.lastIndex}`,
    );
    this.entries.length = first.index - this.firstIndex;
    while (this.configIndexes.length > 0 && (this.configIndexes.at(-1) as number) >= first.index) {
      this.configIndexes.pop();
    }
    for (const e of entries) this.push(e);
  }

  private push(e: Entry<C>): void {
    assert(
      e.index === this.lastIndex + 1,
      `entry ${e.index} is not contiguous with ${this.lastIndex}`,
    );
    assert(
      e.term >= this.lastTerm,
      `entry ${e.index} term ${e.term} below previous ${this.lastTerm}`,
    );
    this.entries.push(e);
    if (e.kind === 'config') this.configIndexes.push(e.index);
  }

  /** Entries lo..hi (inclusive), at most `countMax` and about `bytesMax` (always at least one). */
  slice(
    lo: number,
    hi: number,
    countMax: number,
    bytesMax: number,
    sizeOf: (d: C) => number,
  ): Entry<C>[] {
    assert(lo >= this.firstIndex, `slice from ${lo} is compacted`);
    const out: Entry<C>[] = [];
    let bytes = 0;
    for (let i = lo; i <= Math.min(hi, this.lastIndex) && out.length < countMax; i++) {
      const e = this.entry(i) as Entry<C>;
      bytes += entryBytes(e, sizeOf);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    assert(index <= this.lastIndex, `commit ${index} is past lastIndex ${this.lastIndex}`);
    this.committed = index;
    return true;
  }

  /** Discard entries up to `index` (applied by the host) under a snapshot of the app state there. */
  compact(index: number, data: Uint8Array): Snapshot {
    assert(
      index > this.snap.meta.index && index <= this.committed,
      'compact outside the committed log',
    );
    const term = this.term(index) as number;
    const snapshot: Snapshot = { meta: { index, term, config: this.configAt(index) }, data };
    this.entries = this.entries.slice(index - this.snap.meta.index);
    this.configIndexes = this.configIndexes.filter((i) => i > index);
    this.snap = snapshot;
    return snapshot;
  }

  /**
   * Install a leader's snapshot (section 7): keep the entries after it if our log holds its
   * last entry, otherwise the log becomes the snapshot alone. Mirrors `applyPersist`.
   */
  restore(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    assert(index > this.committed, 'restoring a snapshot at or below the commit index');
    if (this.matchTerm(index, term)) {
      this.entries = this.entries.slice(index - this.snap.meta.index);
      this.configIndexes = this.configIndexes.filter((i) => i > index);
    } else {
      this.entries = [];
      this.configIndexes = [];
    }
    this.snap = snapshot;
    this.committed = index;
  }
}
