import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import { nodeIds } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { KvOp } from '../kv/machine.ts';
import { applyMultiPersist, initialMultiDurable } from '../paxos/multi/durable.ts';
import { MULTI_PAXOS_DEFAULTS } from '../paxos/multi/node.ts';
import { TestCluster } from '../paxos/testing.ts';
import {
  defaultMultiKvReplicaOptions,
  type MultiKvDurable,
  type MultiKvReplicaOptions,
  MultiPaxosKvReplica,
  type MultiPaxosKvTypes,
} from './multipaxos-kv.ts';

type Cluster = TestCluster<MultiPaxosKvTypes, MultiKvDurable, MultiPaxosKvReplica>;

function makeCluster(options: Partial<MultiKvReplicaOptions> = {}, seed = 1) {
  const ids = nodeIds(3);
  const rng = Rng.fromSeed(seed);
  const cluster: Cluster = new TestCluster({
    ids,
    rng,
    inFlightMax: 10_000,
    stepMaxMs: 10,
    create: (id, durable) =>
      MultiPaxosKvReplica.restore(
        { ...MULTI_PAXOS_DEFAULTS, id, members: ids },
        rng.fork(),
        durable,
        {
          ...defaultMultiKvReplicaOptions,
          ...options,
        },
      ),
    initialDurable: () => initialMultiDurable(),
    applyPersist: (d, item) => applyMultiPersist(d, item),
  });
  const leader = (): NodeId | undefined => ids.find((id) => cluster.node(id).paxos.isLeader());
  expect(cluster.runUntil(() => leader() !== undefined, 20_000)).toBe(true);
  let nextId = 100;
  /** Sends one operation and runs until its answer; returns the reply. */
  const call = (node: NodeId, session: number, seq: number, op: KvOp) => {
    const id = ++nextId;
    cluster.request(node, session, { type: 'kv', id, session, seq, op });
    const answered = () => cluster.replies.find((r) => r.reply.id === id);
    expect(cluster.runUntil(() => answered() !== undefined, 20_000)).toBe(true);
    return answered()!.reply;
  };
  return { cluster, ids, leader: () => leader()!, call };
}

describe('Multi-Paxos key-value replica', () => {
  it('answers a write when it is applied, and applies a retried command only once', () => {
    const { leader, call } = makeCluster();
    const first = call(leader(), 7, 1, { f: 'put', key: 'k', value: 'a' });
    expect(first).toMatchObject({ type: 'result', result: { f: 'put', version: 1 } });
    // The same session and sequence number again: the first result, not a second write.
    const retry = call(leader(), 7, 1, { f: 'put', key: 'k', value: 'a' });
    expect(retry).toMatchObject({
      type: 'result',
      result: first.type === 'result' && first.result,
    });
    const read = call(leader(), 8, 1, { f: 'get', key: 'k' });
    expect(read).toMatchObject({ result: { f: 'get', entry: { value: 'a', version: 1 } } });
  });

  it('redirects a client at a follower to the leader, having applied nothing', () => {
    const built = makeCluster();
    const { ids, leader, call } = built;
    const follower = ids.find((id) => id !== leader())!;
    call(leader(), 7, 1, { f: 'put', key: 'k', value: 'a' });
    const { cluster } = built;
    cluster.runUntil(() => cluster.node(follower).paxos.leaderHint() === leader(), 5_000);
    const reply = call(follower, 7, 2, { f: 'put', key: 'k', value: 'b' });
    expect(reply).toEqual({ type: 'notLeader', id: expect.any(Number), leader: leader() });
  });

  it('serves a read under the lease without a log instance, and through the log when asked', () => {
    for (const reads of ['lease', 'log'] as const) {
      const { cluster, leader, call } = makeCluster({ reads });
      call(leader(), 7, 1, { f: 'put', key: 'k', value: 'a' });
      cluster.runUntil(() => false, 500); // heartbeats acked: the leader holds its lease
      const before = cluster.node(leader()).paxos.commitIndex();
      const read = call(leader(), 8, 1, { f: 'get', key: 'k' });
      expect(read).toMatchObject({ result: { entry: { value: 'a' } } });
      const instances = cluster.node(leader()).paxos.commitIndex() - before;
      expect({ reads, instances: instances > 0 }).toEqual({ reads, instances: reads === 'log' });
    }
  });

  it('restores its state machine from the snapshot and the chosen instances after it', () => {
    const { cluster, ids, leader, call } = makeCluster({ snapshotEveryInstances: 3 });
    for (let seq = 1; seq <= 10; seq++) {
      call(leader(), 7, seq, { f: 'put', key: `k${seq % 4}`, value: `v${seq}` });
    }
    cluster.runUntil(() => ids.every((id) => cluster.node(id).lastApplied >= 10), 20_000);
    const disk = cluster.disks.get(ids[0]!)!;
    expect(disk.snapshot?.upTo).toBeGreaterThanOrEqual(3); // compacted on the way
    const before = cluster.node(ids[0]!).machine.snapshot();
    cluster.crash(ids[0]!);
    const after = cluster.node(ids[0]!);
    expect(after.machine.snapshot()).toEqual(before);
    expect(after.lastApplied).toBe(after.paxos.commitIndex() - 1);
  });
});
