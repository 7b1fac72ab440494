import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KvCommand } from '../kv/machine.ts';
import { applyPersist, type RaftDurableState } from '../raft/durable.ts';
import { MultiPaxosStorage } from './multipaxos-storage.ts';
import { RaftStorage } from './raft-storage.ts';
import {
  foldMulti,
  foldRaft,
  type MultiItem,
  multiScript,
  type RaftItem,
  type RaftScript,
  raftScript,
  scriptConfig,
  scriptWal,
} from './testing/storage-scripts.ts';

/**
 * The file stores held against the cores' own fold (`applyPersist`, `applyMultiPersist`):
 * a child process persists a random script of Ready batches and kills itself with SIGKILL
 * at a random point (or closes cleanly); the parent reopens the directory and requires the
 * restored state to be the fold of a durable prefix: every batch acknowledged before the
 * crash, then any prefix of the batch in flight (an entries item counting as its truncation
 * followed by one append per entry, as the WAL writes it). Raft's store also writes some things in
 * the background, which a crash may lose without harm, and the check allows exactly those:
 * a compaction (a snapshot of the node's own log; the longer log it replaces holds the same
 * entries) and the commit index (a hint, clamped to the log at restart), which must
 * nevertheless never count as committed an entry that was not.
 *
 * Each rule of the stores is caught when removed, in a few dozen runs: Raft's choice between
 * keeping the log under a leader's snapshot and replacing it, the snapshot made durable
 * before the WAL is reset or trimmed under it; Multi-Paxos's checkpoint appended before the
 * WAL prefix is dropped. STORAGE_CONFORMANCE_RUNS sets the runs per store (default 12, each
 * one child process); run it with a few hundred after changing a store.
 */
const runs = Number(process.env.STORAGE_CONFORMANCE_RUNS ?? 12);
const repoRoot = join(import.meta.dirname, '../..');
const child = join(import.meta.dirname, 'testing/storage-crash-child.ts');

type Protocol = 'raft' | 'multipaxos';

interface Schedule {
  readonly seed: number;
  readonly count: number;
  /** -1: close cleanly after every batch; else the batch in flight at the kill. */
  readonly crashAt: number;
  readonly waitMs: number;
}

function runChild(protocol: Protocol, dir: string, s: Schedule): Promise<void> {
  const args = [protocol, dir, s.seed, s.count, s.crashAt, s.waitMs].map(String);
  return new Promise((resolve, reject) => {
    // Node itself with the tsx loader, not the tsx wrapper: the kill must hit the writer.
    const proc = spawn(process.execPath, ['--import', 'tsx', child, ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const giveUp = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.on('exit', (code, signal) => {
      clearTimeout(giveUp);
      const expected = s.crashAt < 0 ? code === 0 : signal === 'SIGKILL';
      if (expected) resolve();
      else reject(new Error(`child ended with code ${code}, signal ${signal}: ${stderr}`));
    });
  });
}

const schedule = fc
  .record({
    seed: fc.nat(),
    count: fc.integer({ min: 1, max: 16 }),
    crash: fc.nat(),
    clean: fc.integer({ min: 0, max: 5 }),
    waitMs: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 120 })),
  })
  .map(
    ({ seed, count, crash, clean, waitMs }): Schedule => ({
      seed,
      count,
      crashAt: clean === 0 ? -1 : crash % (count + 1),
      waitMs,
    }),
  );

/** The item counts of the acknowledged batches, and of those plus the batch in flight. */
function durableBounds(
  batches: readonly (readonly unknown[])[],
  crashAt: number,
): { min: number; max: number } {
  const acked = crashAt < 0 ? batches.length : crashAt;
  let min = 0;
  for (let i = 0; i < acked; i++) min += batches[i]!.length;
  const inFlight = crashAt >= 0 && crashAt < batches.length ? batches[crashAt]!.length : 0;
  return { min, max: min + inFlight };
}

async function withDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'quorate-conformance-'));
  try {
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Raft

/**
 * Folds the first `k` items, leaving out every compaction after the first `kept`: the store
 * writes compactions in the background, in order, so those durable at a crash are a prefix.
 * With `partial`, item `k` (an entries item) is durable in part: an entries item drops the
 * conflicting suffix, then appends its entries one record after another, and a crash may
 * keep the drop and any number of the records (a torn write keeps whole records only).
 */
function foldRaftPrefix(items: readonly RaftItem[], k: number, kept: number, partial?: number) {
  const d = foldRaft([]);
  let compactions = 0;
  for (const item of items.slice(0, k)) {
    if (item.kind === 'snapshot' && holds(d, item.snapshot.meta.index, item.snapshot.meta.term)) {
      compactions++;
      if (compactions > kept) continue;
    }
    applyPersist(d, item);
  }
  const torn = items[k];
  if (partial !== undefined && torn?.kind === 'entries') {
    const first = torn.entries.slice(0, Math.max(1, partial));
    applyPersist(d, { kind: 'entries', entries: first });
    if (partial === 0) d.entries.pop();
  }
  return { d, compactions };
}

/** How many records of item `k` a crash may keep short of all of it: none for most items. */
function partialsOf(item: RaftItem | undefined): number[] {
  if (item?.kind !== 'entries') return [];
  return Array.from({ length: item.entries.length }, (_, p) => p);
}

function holds(d: RaftDurableState<KvCommand>, index: number, term: number): boolean {
  const base = d.snapshot.meta.index;
  return index > base && d.entries[index - base - 1]?.term === term;
}

const logOf = (d: RaftDurableState<KvCommand>) => ({
  term: d.hardState.term,
  vote: d.hardState.vote,
  snapshot: d.snapshot,
  entries: d.entries,
});

/** Why the restored state is no fold of a durable prefix, or undefined when it is one. */
function raftMismatch(
  script: RaftScript,
  crashAt: number,
  restored: RaftDurableState<KvCommand>,
): string | undefined {
  const items = script.batches.flat();
  const { min, max } = durableBounds(script.batches, crashAt);
  let found = false;
  for (let k = min; k <= max && !found; k++) {
    const partials = k < max ? [undefined, ...partialsOf(items[k])] : [undefined];
    for (const partial of partials) {
      for (let kept = 0; !found; kept++) {
        const { d, compactions } = foldRaftPrefix(items, k, kept, partial);
        found = isDeepStrictEqual(logOf(restored), logOf(d));
        if (kept >= compactions) break;
      }
    }
  }
  if (!found) return `the log is no fold of items ${min}..${max} (of ${items.length})`;
  return commitMismatch(script, items.slice(0, min), crashAt < 0, restored);
}

function commitMismatch(
  script: RaftScript,
  acked: readonly RaftItem[],
  clean: boolean,
  restored: RaftDurableState<KvCommand>,
): string | undefined {
  const base = restored.snapshot.meta.index;
  const last = base + restored.entries.length;
  const clamp = (commit: number) => Math.max(base, Math.min(commit, last));
  const { commit } = restored.hardState;
  if (clean) {
    const want = clamp(foldRaft(acked).hardState.commit);
    return commit === want ? undefined : `commit ${commit} after a clean close, not ${want}`;
  }
  // Term and vote changes are saved before the batch goes on; commit-only ones need not be.
  let floor = 0;
  let prev = foldRaft([]).hardState;
  for (const item of acked) {
    if (item.kind !== 'hardState') continue;
    if (item.state.term !== prev.term || item.state.vote !== prev.vote) floor = item.state.commit;
    prev = item.state;
  }
  if (commit < clamp(floor)) return `commit ${commit} below the durable ${clamp(floor)}`;
  for (let index = base + 1; index <= commit; index++) {
    const want = script.committed.get(index);
    if (!isDeepStrictEqual(restored.entries[index - base - 1], want)) {
      return `restored commit ${commit} covers entry ${index}, which was never committed`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Multi-Paxos

function multiMismatch(
  batches: readonly (readonly MultiItem[])[],
  crashAt: number,
  restored: ReturnType<MultiPaxosStorage['durable']>,
): string | undefined {
  const items = batches.flat();
  const { min, max } = durableBounds(batches, crashAt);
  for (let k = min; k <= max; k++) {
    if (isDeepStrictEqual(restored, foldMulti(items.slice(0, k)))) return undefined;
  }
  return `the state is no fold of items ${min}..${max} (of ${items.length})`;
}

describe('file stores restore the fold of a durable prefix after a crash', () => {
  it(`RaftStorage against applyPersist (${runs} random crashes)`, async () => {
    await fc.assert(
      fc.asyncProperty(schedule, (s) =>
        withDir(async (dir) => {
          await runChild('raft', dir, s);
          const storage = await RaftStorage.open({
            dir,
            id: 1,
            bootstrap: scriptConfig,
            ...scriptWal,
          });
          const mismatch = raftMismatch(raftScript(s.seed, s.count), s.crashAt, storage.restored);
          await storage.close();
          expect(mismatch).toBeUndefined();
        }),
      ),
      { numRuns: runs, endOnFailure: true },
    );
  }, 120_000);

  it(`MultiPaxosStorage against applyMultiPersist (${runs} random crashes)`, async () => {
    await fc.assert(
      fc.asyncProperty(schedule, (s) =>
        withDir(async (dir) => {
          await runChild('multipaxos', dir, s);
          const storage = await MultiPaxosStorage.open({
            dir,
            id: 1,
            ...scriptWal,
          });
          const mismatch = multiMismatch(
            multiScript(s.seed, s.count),
            s.crashAt,
            storage.durable(),
          );
          await storage.close();
          expect(mismatch).toBeUndefined();
        }),
      ),
      { numRuns: runs, endOnFailure: true },
    );
  }, 120_000);
});
