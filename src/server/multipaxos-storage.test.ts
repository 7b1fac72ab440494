import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Rng } from '../kernel/rng.ts';
import type { KvCommand } from '../kv/machine.ts';
import type { ProposalId } from '../paxos/ballot.ts';
import { MULTI_PAXOS_DEFAULTS } from '../paxos/multi/node.ts';
import type { Batch, MultiPersist } from '../paxos/multi/types.ts';
import { defaultMultiKvReplicaOptions, MultiPaxosKvReplica } from '../replica/multipaxos-kv.ts';
import { filePacker } from '../runtime/msgpack.ts';
import { FileSnapshotStore, writeSnapshot } from '../runtime/storage/snapshot.ts';
import { MultiPaxosStorage } from './multipaxos-storage.ts';

type Item = MultiPersist<KvCommand, Uint8Array>;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorate-mp-storage-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ballot = (round: number, node = 1): ProposalId => ({ round, node });
const batch = (key: string): Batch<KvCommand> => [
  { client: 1, id: 1, command: { session: 0, seq: 0, op: { f: 'put', key, value: key } } },
];

async function reopen(): Promise<MultiPaxosStorage> {
  return MultiPaxosStorage.open({ dir, id: 1 });
}

async function persistAll(items: readonly Item[]): Promise<void> {
  const storage = await reopen();
  await storage.persist(items);
  await storage.close();
}

function instancesFrom(count: number, from = 1): Item[] {
  const items: Item[] = [];
  for (let i = from; i < from + count; i++) {
    items.push({ type: 'accept', instance: i, ballot: ballot(2), value: batch(`k${i}`) });
    items.push({ type: 'chosen', instance: i, value: batch(`k${i}`) });
  }
  return items;
}

describe('MultiPaxosStorage', () => {
  it('restores promise, proposal id, accepted and chosen instances after a reopen', async () => {
    await persistAll([
      { type: 'proposalId', id: ballot(3) },
      { type: 'promise', ballot: ballot(3) },
      ...instancesFrom(3),
      { type: 'accept', instance: 4, ballot: ballot(4, 2), value: batch('k4') },
    ]);
    const d = (await reopen()).durable();
    expect(d.promised).toEqual(ballot(4, 2)); // accepting under a ballot promises it
    expect(d.lastProposalId).toEqual(ballot(3));
    expect([...d.chosen.keys()]).toEqual([1, 2, 3]);
    expect(d.accepted.get(4)?.ballot).toEqual(ballot(4, 2));
    expect(d.snapshot).toBeNull();
  });

  it('a snapshot drops the instances it covers and survives a reopen', async () => {
    const storage = await reopen();
    await storage.persist(instancesFrom(10));
    const image = new TextEncoder().encode('kv image');
    await storage.persist([{ type: 'snapshot', upTo: 6, data: image }, ...instancesFrom(2, 11)]);
    await storage.close();
    const d = (await reopen()).durable();
    expect(d.snapshot?.upTo).toBe(6);
    expect(d.snapshot?.data).toEqual(image);
    expect([...d.chosen.keys()]).toEqual([7, 8, 9, 10, 11, 12]);
    expect([...d.accepted.keys()]).toEqual([7, 8, 9, 10, 11, 12]);
    expect(d.promised).toEqual(ballot(2));
  });

  it('restarts correctly after a crash between writing a snapshot and its checkpoint', async () => {
    await persistAll([{ type: 'promise', ballot: ballot(5) }, ...instancesFrom(8)]);
    // The snapshot is durable, but the WAL still holds every record it covers.
    const store = await FileSnapshotStore.open(join(dir, 'snapshots'));
    await writeSnapshot(store, filePacker.pack({ upTo: 5 }), [new Uint8Array([1, 2, 3])]);
    const d = (await reopen()).durable();
    expect(d.snapshot?.upTo).toBe(5);
    expect([...d.chosen.keys()]).toEqual([6, 7, 8]);
    expect(d.promised).toEqual(ballot(5));
  });

  it('refuses a directory of another node or of a Raft node', async () => {
    await (await reopen()).close();
    await expect(MultiPaxosStorage.open({ dir, id: 2 })).rejects.toThrow(/belongs to node 1/);
    const raftDir = join(dir, 'raft');
    await MultiPaxosStorage.open({ dir: raftDir, id: 1 }).then((s) => s.close());
    await writeFile(join(raftDir, 'node.json'), JSON.stringify({ id: 1 }));
    await expect(MultiPaxosStorage.open({ dir: raftDir, id: 1 })).rejects.toThrow(/raft node/);
  });

  it('a single-node replica restarted from disk has every acknowledged write', async () => {
    const config = { ...MULTI_PAXOS_DEFAULTS, id: 1, members: [1] };
    const options = { ...defaultMultiKvReplicaOptions, snapshotEveryInstances: 4 };
    const storage = await reopen();
    const replica = MultiPaxosKvReplica.restore(
      config,
      Rng.fromSeed(7),
      storage.durable(),
      options,
    );
    let now = 0;
    const acknowledged = new Set<number>();
    const drain = async () => {
      for (let rd = replica.ready(); rd !== undefined; rd = replica.ready()) {
        await storage.persist(rd.persist);
        for (const r of rd.replies) if (r.reply.type === 'result') acknowledged.add(r.reply.id);
        replica.advance();
      }
    };
    while (!replica.paxos.isLeader() && now < 10_000) {
      now += 50;
      replica.tick(now);
      await drain();
    }
    expect(replica.paxos.isLeader()).toBe(true);
    for (let i = 1; i <= 10; i++) {
      const op = { f: 'put', key: `k${i}`, value: `v${i}` } as const;
      replica.request(now, i, { type: 'kv', id: i, session: 9, seq: i, op });
      await drain();
    }
    expect(acknowledged.size).toBe(10);
    await storage.close();

    const again = await reopen();
    const restored = MultiPaxosKvReplica.restore(config, Rng.fromSeed(8), again.durable(), options);
    await again.close();
    for (let i = 1; i <= 10; i++) {
      expect(restored.machine.read({ f: 'get', key: `k${i}` })).toMatchObject({
        entry: { value: `v${i}` },
      });
    }
  });
});
