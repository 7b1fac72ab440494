import { assert } from '../../kernel/assert.ts';
import { NO_NODE } from '../../kernel/ids.ts';
import { Rng } from '../../kernel/rng.ts';
import type { KvCommand } from '../../kv/machine.ts';
import { compareProposalIds, type ProposalId, ZERO_PROPOSAL_ID } from '../../paxos/ballot.ts';
import { applyMultiPersist, initialMultiDurable } from '../../paxos/multi/durable.ts';
import type { Batch, MultiDurable, MultiPersist } from '../../paxos/multi/types.ts';
import { applyPersist, initialDurableState, type RaftDurableState } from '../../raft/durable.ts';
import type { Entry, RaftConfig, RaftPersist } from '../../raft/types.ts';

/**
 * Random persist scripts for the storage conformance test (storage-conformance.test.ts):
 * sequences of Ready batches of the shape the cores emit, each batch generated from the
 * reference fold of the batches before it, so that it is one a core could have asked for.
 * A script is a pure function of its seed: the crash child and the checking parent build
 * the same one.
 */

export const scriptConfig: RaftConfig = { voters: [1, 2, 3], learners: [] };
/**
 * Small WAL segments, so that compaction trims whole segments within a short script: the
 * WAL options every store of the test opens with.
 */
export const scriptWal = { segmentBytesMax: 480, recordBytesMax: 400 } as const;

export type RaftItem = RaftPersist<KvCommand>;
export type MultiItem = MultiPersist<KvCommand, Uint8Array>;

export interface RaftScript {
  readonly batches: readonly (readonly RaftItem[])[];
  /**
   * Every entry ever committed, by index: committed entries never change, so an entry a
   * restored node counts as committed must be this one (or lie under a snapshot).
   */
  readonly committed: ReadonlyMap<number, Entry<KvCommand>>;
}

function bytes(rng: Rng, lengthMax: number): Uint8Array {
  return Uint8Array.from({ length: rng.range(0, lengthMax) }, () => rng.int(256));
}

function command(rng: Rng, tag: string): KvCommand {
  return { session: rng.range(0, 3), seq: rng.int(1000), op: { f: 'put', key: tag, value: tag } };
}

/** Where the generator's core stands: the fold of what it asked to persist. */
class RaftWriter {
  readonly d: RaftDurableState<KvCommand> = initialDurableState(scriptConfig);
  readonly committed = new Map<number, Entry<KvCommand>>();
  private batch: RaftItem[] = [];

  constructor(private readonly rng: Rng) {}

  get last(): number {
    return this.d.snapshot.meta.index + this.d.entries.length;
  }

  termAt(index: number): number {
    const base = this.d.snapshot.meta.index;
    if (index === base) return this.d.snapshot.meta.term;
    const entry = this.d.entries[index - base - 1];
    assert(entry !== undefined, `index ${index} is in the log`);
    return entry.term;
  }

  push(item: RaftItem): void {
    this.batch.push(item);
    applyPersist(this.d, item);
  }

  newTerm(vote: number): void {
    const { term, commit } = this.d.hardState;
    this.push({ kind: 'hardState', state: { term: term + 1, vote, commit } });
  }

  /** Entries of the current term from `from` on (a new leader's or a follower's). */
  entries(from: number, count: number): void {
    const term = this.d.hardState.term;
    const entries: Entry<KvCommand>[] = [];
    for (let index = from; index < from + count; index++) {
      entries.push({ index, term, kind: 'normal', data: command(this.rng, `t${term}i${index}`) });
    }
    this.push({ kind: 'entries', entries });
  }

  /** A commit-only hard state, anywhere from the current commit to the end of the log. */
  commitUpTo(): void {
    const { commit } = this.d.hardState;
    if (commit >= this.last) return;
    const to = this.rng.range(commit + 1, this.last);
    this.push({ kind: 'hardState', state: { ...this.d.hardState, commit: to } });
  }

  snapshot(index: number, term: number): void {
    // A snapshot covers committed entries only: those of this log it keeps count as such.
    const base = this.d.snapshot.meta.index;
    if (index > base && index <= this.last && this.termAt(index) === term) {
      for (let i = base + 1; i <= index; i++) this.commitEntry(i);
    }
    const data = bytes(this.rng, 24);
    this.push({
      kind: 'snapshot',
      snapshot: { meta: { index, term, config: scriptConfig }, data },
    });
  }

  private commitEntry(index: number): void {
    const entry = this.d.entries[index - this.d.snapshot.meta.index - 1];
    assert(entry !== undefined, 'the generator commits only what its log holds');
    const known = this.committed.get(index);
    assert(known === undefined || known === entry, `committed entry ${index} never changes`);
    this.committed.set(index, entry);
  }

  endBatch(): RaftItem[] {
    const { commit } = this.d.hardState;
    const base = this.d.snapshot.meta.index;
    for (let index = base + 1; index <= commit; index++) this.commitEntry(index);
    const batch = this.batch;
    this.batch = [];
    return batch;
  }
}

/** One batch of a kind a Raft core emits, chosen at random. */
function raftBatch(w: RaftWriter, rng: Rng): RaftItem[] {
  const { commit } = w.d.hardState;
  const base = w.d.snapshot.meta.index;
  switch (rng.int(6)) {
    case 0: // a leader appends (after winning a term, sometimes), and may commit in the batch
      if (w.d.hardState.term === 0 || rng.chance(0.3)) w.newTerm(1);
      w.entries(w.last + 1, rng.range(1, 4));
      if (rng.chance(0.5)) w.commitUpTo();
      break;
    case 1: // a new leader's append overwrites the uncommitted suffix, and commits with it
      w.newTerm(rng.range(2, 3));
      w.entries(rng.range(Math.max(commit, base) + 1, w.last + 1), rng.range(1, 4));
      if (rng.chance(0.7)) w.commitUpTo();
      break;
    case 2:
      w.commitUpTo();
      break;
    case 3: // compaction: a snapshot of its own applied log
      if (commit > base) {
        const index = rng.range(base + 1, commit);
        w.snapshot(index, w.termAt(index));
      }
      break;
    case 4: {
      // a leader's snapshot past the commit: of this log (kept) or of another (replaces it)
      if (w.d.hardState.term === 0 || rng.chance(0.5)) w.newTerm(NO_NODE);
      const index = rng.range(commit + 1, w.last + 3);
      const own = index <= w.last && rng.chance(0.4);
      w.snapshot(index, own ? w.termAt(index) : w.d.hardState.term);
      if (rng.chance(0.5)) w.entries(w.last + 1, rng.range(1, 3));
      break;
    }
    default: // a vote in a new term alone
      w.newTerm(rng.range(2, 3));
      break;
  }
  return w.endBatch();
}

export function raftScript(seed: number, batchCount: number): RaftScript {
  const rng = Rng.fromSeed(seed);
  const w = new RaftWriter(rng);
  const batches: RaftItem[][] = [];
  while (batches.length < batchCount) {
    const batch = raftBatch(w, rng);
    if (batch.length > 0) batches.push(batch);
  }
  return { batches, committed: w.committed };
}

/** Folds `items` from the initial state with the core's own rules. */
export function foldRaft(items: readonly RaftItem[]): RaftDurableState<KvCommand> {
  const d = initialDurableState<KvCommand>(scriptConfig);
  for (const item of items) applyPersist(d, item);
  return d;
}

// ---------------------------------------------------------------------------------------
// Multi-Paxos

class MultiWriter {
  d: MultiDurable<KvCommand, Uint8Array> = initialMultiDurable();
  private batch: MultiItem[] = [];

  constructor(private readonly rng: Rng) {}

  push(item: MultiItem): void {
    this.batch.push(item);
    this.d = applyMultiPersist(this.d, item);
  }

  above(id: ProposalId): ProposalId {
    return { round: id.round + this.rng.range(0, 1), node: this.rng.range(1, 3) };
  }

  value(instance: number): Batch<KvCommand> {
    const count = this.rng.range(0, 2);
    return Array.from({ length: count }, (_, i) => ({
      client: this.rng.range(1, 4),
      id: this.rng.int(100),
      command: command(this.rng, `i${instance}c${i}`),
    }));
  }

  endBatch(): MultiItem[] {
    const batch = this.batch;
    this.batch = [];
    return batch;
  }
}

function raise(w: MultiWriter, current: ProposalId): ProposalId {
  const next = w.above(current);
  return compareProposalIds(next, current) > 0 ? next : { round: current.round + 1, node: 1 };
}

/** One batch of a kind a Multi-Paxos core emits, chosen at random. */
function multiBatch(w: MultiWriter, rng: Rng): MultiItem[] {
  const upTo = w.d.snapshot?.upTo ?? 0;
  const instance = () => rng.range(upTo + 1, upTo + 8);
  const items = rng.range(1, 4);
  for (let i = 0; i < items; i++) {
    switch (rng.int(6)) {
      case 0: {
        const id = raise(w, w.d.lastProposalId);
        w.push({ type: 'proposalId', id });
        if (compareProposalIds(id, w.d.promised) > 0) w.push({ type: 'promise', ballot: id });
        break;
      }
      case 1:
        w.push({ type: 'promise', ballot: raise(w, w.d.promised) });
        break;
      case 2:
      case 3: {
        const at = instance();
        const ballot = isZero(w.d.promised) ? { round: 1, node: 1 } : w.d.promised;
        const value = w.value(at);
        w.push({ type: 'accept', instance: at, ballot, value });
        if (rng.chance(0.5)) w.push({ type: 'chosen', instance: at, value });
        break;
      }
      case 4: {
        const at = instance();
        w.push({ type: 'chosen', instance: at, value: w.value(at) });
        break;
      }
      default: {
        // a snapshot of the chosen prefix, or a stale one the storage must ignore
        const chosen = [...w.d.chosen.keys()];
        const to = chosen.length > 0 ? Math.max(...chosen) : upTo;
        const at = rng.chance(0.2) ? rng.range(Math.max(1, upTo - 2), Math.max(1, upTo)) : to;
        if (at >= 1) w.push({ type: 'snapshot', upTo: at, data: bytes(rng, 24) });
        break;
      }
    }
  }
  return w.endBatch();
}

function isZero(id: ProposalId): boolean {
  return compareProposalIds(id, ZERO_PROPOSAL_ID) === 0;
}

export function multiScript(seed: number, batchCount: number): readonly (readonly MultiItem[])[] {
  const rng = Rng.fromSeed(seed);
  const w = new MultiWriter(rng);
  const batches: MultiItem[][] = [];
  while (batches.length < batchCount) {
    const batch = multiBatch(w, rng);
    if (batch.length > 0) batches.push(batch);
  }
  return batches;
}

export function foldMulti(items: readonly MultiItem[]): MultiDurable<KvCommand, Uint8Array> {
  let d: MultiDurable<KvCommand, Uint8Array> = initialMultiDurable();
  for (const item of items) d = applyMultiPersist(d, item);
  return d;
}
