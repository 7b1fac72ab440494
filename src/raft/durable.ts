import { assert, unreachable } from '../kernel/assert.ts';
import { NO_NODE } from '../kernel/ids.ts';
import type { Entry, HardState, RaftConfig, RaftPersist, Snapshot } from './types.ts';

/**
 * Everything a Raft node keeps across a crash: hard state, the latest snapshot and the log
 * entries after it. The simulator's disk and the real WAL both hold exactly this, changed
 * only by `applyPersist`, so there is one definition of what survives a crash.
 */
export interface RaftDurableState<C> {
  hardState: HardState;
  snapshot: Snapshot;
  /** Consecutive entries starting at snapshot.meta.index + 1. */
  entries: Entry<C>[];
}

/** The durable state of a node that has never run: an empty log under `config`. */
export function initialDurableState<C>(config: RaftConfig): RaftDurableState<C> {
  return {
    hardState: { term: 0, vote: NO_NODE, commit: 0 },
    snapshot: { meta: { index: 0, term: 0, config }, data: new Uint8Array(0) },
    entries: [],
  };
}

/** A copy that shares the (immutable) entries and snapshot but no arrays. */
export function cloneDurableState<C>(d: RaftDurableState<C>): RaftDurableState<C> {
  return { hardState: d.hardState, snapshot: d.snapshot, entries: [...d.entries] };
}

/**
 * Apply one persist item to durable state, in place. A host writes a batch's items one by one
 * with this; a crash may keep any prefix of a batch, and every prefix is a state the core
 * can restart from safely (the core orders items so that it is).
 */
export function applyPersist<C>(d: RaftDurableState<C>, item: RaftPersist<C>): void {
  switch (item.kind) {
    case 'hardState':
      assert(item.state.term >= d.hardState.term, 'durable term must not go back');
      d.hardState = item.state;
      return;
    case 'entries': {
      const first = item.entries[0];
      if (first === undefined) return;
      const base = d.snapshot.meta.index;
      assert(first.index > base, 'persisting entries inside the snapshot');
      assert(first.index <= base + d.entries.length + 1, 'persisting entries with a gap');
      d.entries.length = first.index - base - 1;
      for (const e of item.entries) d.entries.push(e);
      return;
    }
    case 'snapshot': {
      const { index, term } = item.snapshot.meta;
      const base = d.snapshot.meta.index;
      if (index <= base) return;
      const held = d.entries[index - base - 1];
      d.entries = held !== undefined && held.term === term ? d.entries.slice(index - base) : [];
      d.snapshot = item.snapshot;
      if (d.hardState.commit < index) d.hardState = { ...d.hardState, commit: index };
      return;
    }
    default:
      unreachable(item, 'persist item');
  }
}
