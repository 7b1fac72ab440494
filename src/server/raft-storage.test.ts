import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { KvCommand } from '../kv/machine.ts';
import type { Entry, RaftConfig } from '../raft/types.ts';
import { RaftStorage } from './raft-storage.ts';

const config: RaftConfig = { voters: [1, 2, 3], learners: [] };
const dirs: string[] = [];

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function open(dir?: string): Promise<{ storage: RaftStorage; dir: string }> {
  const at = dir ?? (await mkdtemp(join(tmpdir(), 'quorate-storage-')));
  if (dir === undefined) dirs.push(at);
  return { storage: await RaftStorage.open({ dir: at, id: 1, bootstrap: config }), dir: at };
}

function entries(from: number, to: number, term: number): Entry<KvCommand>[] {
  const out: Entry<KvCommand>[] = [];
  for (let index = from; index <= to; index++) {
    out.push({
      index,
      term,
      kind: 'normal',
      data: { session: 0, seq: 0, op: { f: 'put', key: `k${index}`, value: `t${term}` } },
    });
  }
  return out;
}

const snapshot = (index: number, term: number) => ({
  kind: 'snapshot' as const,
  snapshot: { meta: { index, term, config }, data: Uint8Array.from([index, term]) },
});

describe('RaftStorage', () => {
  it('restores hard state and entries, overwriting a conflicting suffix', async () => {
    const { storage, dir } = await open();
    expect(storage.fresh).toBe(true);
    await storage.persist([
      { kind: 'hardState', state: { term: 2, vote: 1, commit: 0 } },
      { kind: 'entries', entries: entries(1, 5, 1) },
    ]);
    await storage.persist([
      { kind: 'hardState', state: { term: 2, vote: 1, commit: 3 } },
      { kind: 'entries', entries: entries(4, 6, 2) },
    ]);
    await storage.close();
    const again = (await open(dir)).storage;
    expect(again.fresh).toBe(false);
    expect(again.restored.hardState).toEqual({ term: 2, vote: 1, commit: 3 });
    expect(again.restored.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 2],
      [5, 2],
      [6, 2],
    ]);
    await again.close();
  });

  it('keeps the entries after a snapshot of its own log and drops the covered ones', async () => {
    const { storage, dir } = await open();
    await storage.persist([
      { kind: 'hardState', state: { term: 1, vote: 0, commit: 5 } },
      { kind: 'entries', entries: entries(1, 5, 1) },
    ]);
    await storage.persist([snapshot(3, 1)]);
    await storage.persist([{ kind: 'entries', entries: entries(6, 6, 1) }]);
    await storage.close();
    const again = (await open(dir)).storage;
    expect(again.restored.snapshot.meta.index).toBe(3);
    expect([...again.restored.snapshot.data]).toEqual([3, 1]);
    expect(again.restored.entries.map((e) => e.index)).toEqual([4, 5, 6]);
    await again.close();
  });

  it('writes a compaction in the background: the batch does not wait for it, close does', async () => {
    const { storage, dir } = await open();
    await storage.persist([
      { kind: 'hardState', state: { term: 1, vote: 0, commit: 5 } },
      { kind: 'entries', entries: entries(1, 5, 1) },
    ]);
    const snaps = join(dir, 'snapshots');
    const finished = async () => (await readdir(snaps)).filter((f) => f.endsWith('.snap'));
    await storage.persist([snapshot(5, 1)]);
    // Resolved before the snapshot file could be written: the WAL holds what it covers.
    expect(await finished()).toEqual([]);
    await storage.persist([{ kind: 'entries', entries: entries(6, 7, 1) }]);
    await storage.close();
    expect(await finished()).toHaveLength(1);
    const again = (await open(dir)).storage;
    expect(again.restored.snapshot.meta.index).toBe(5);
    expect(again.restored.entries.map((e) => e.index)).toEqual([6, 7]);
    await again.close();
  });

  it("drops a conflicting log under a leader's snapshot and continues after it", async () => {
    const { storage, dir } = await open();
    await storage.persist([
      { kind: 'hardState', state: { term: 3, vote: 0, commit: 0 } },
      { kind: 'entries', entries: entries(1, 5, 1) },
    ]);
    await storage.persist([snapshot(4, 3)]);
    await storage.persist([{ kind: 'entries', entries: entries(5, 5, 3) }]);
    await storage.close();
    const again = (await open(dir)).storage;
    expect(again.restored.snapshot.meta).toMatchObject({ index: 4, term: 3 });
    expect(again.restored.entries.map((e) => [e.index, e.term])).toEqual([[5, 3]]);
    // Commit is at least the snapshot's index, never beyond the durable log.
    expect(again.restored.hardState.commit).toBe(4);
    await again.close();
  });

  it('writes all entry items of a batch with one fdatasync, a later item overwriting', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quorate-storage-'));
    dirs.push(dir);
    let fsyncs = 0;
    const storage = await RaftStorage.open({
      dir,
      id: 1,
      bootstrap: config,
      walMetrics: { fsync: () => fsyncs++ },
    });
    await storage.persist([
      { kind: 'hardState', state: { term: 2, vote: 1, commit: 0 } },
      { kind: 'entries', entries: entries(1, 5, 1) },
      { kind: 'entries', entries: entries(6, 7, 1) },
      // A newer leader's append within the same batch replaces 4.. (section 5.3).
      { kind: 'entries', entries: entries(4, 5, 2) },
    ]);
    expect(fsyncs).toBe(1);
    await storage.close();
    const again = (await open(dir)).storage;
    expect(again.restored.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 2],
      [5, 2],
    ]);
    await again.close();
  });

  it('saves a commit-only hard state in the background, never over a newer term', async () => {
    const { storage, dir } = await open();
    await storage.persist([
      { kind: 'hardState', state: { term: 2, vote: 1, commit: 0 } },
      { kind: 'entries', entries: entries(1, 3, 2) },
    ]);
    await storage.persist([{ kind: 'hardState', state: { term: 2, vote: 1, commit: 2 } }]);
    await storage.persist([{ kind: 'hardState', state: { term: 2, vote: 1, commit: 3 } }]);
    // Issued while the commit saves may still wait: the term change must win.
    await storage.persist([{ kind: 'hardState', state: { term: 3, vote: 0, commit: 3 } }]);
    await storage.close();
    const again = (await open(dir)).storage;
    expect(again.restored.hardState).toEqual({ term: 3, vote: 0, commit: 3 });
    await again.close();

    const third = (await open(dir)).storage;
    await third.persist([{ kind: 'hardState', state: { term: 3, vote: 0, commit: 1 } }]);
    await third.close(); // close waits for the background save
    const fourth = (await open(dir)).storage;
    expect(fourth.restored.hardState.commit).toBe(1);
    await fourth.close();
  });

  it('refuses a data directory that belongs to another node', async () => {
    const { storage, dir } = await open();
    await storage.close();
    await expect(RaftStorage.open({ dir, id: 2, bootstrap: config })).rejects.toThrow(
      /belongs to node 1, not node 2/,
    );
  });
});
