import { describe, expect, it } from 'vitest';
import type { Ready } from '../kernel/core.ts';
import type { NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { KvCommand } from '../kv/machine.ts';
import { defaultRaftOptions } from '../raft/config.ts';
import type { RaftMsg } from '../raft/types.ts';
import {
  defaultReplicaOptions,
  RaftKvReplica,
  type RaftKvTypes,
  type ReplicaOptions,
} from './raft-kv.ts';

/** Three replicas on a network the test drives message by message; disks are instant. */
class Cluster {
  readonly nodes = new Map<NodeId, RaftKvReplica>();
  readonly inbox: { from: NodeId; to: NodeId; msg: RaftMsg<KvCommand> }[] = [];
  now = 0;

  constructor(replica: ReplicaOptions = defaultReplicaOptions) {
    const config = { voters: [1, 2, 3], learners: [] };
    for (const id of [1, 2, 3]) {
      const options = defaultRaftOptions<KvCommand>();
      this.nodes.set(id, RaftKvReplica.create(id, config, options, Rng.fromSeed(id), replica));
    }
  }

  node(id: NodeId): RaftKvReplica {
    return this.nodes.get(id) as RaftKvReplica;
  }

  /** Takes and carries out one node's batches; returns them for inspection. */
  drain(id: NodeId): Ready<RaftKvTypes>[] {
    const node = this.node(id);
    const batches: Ready<RaftKvTypes>[] = [];
    for (let rd = node.ready(); rd !== undefined; rd = node.ready()) {
      batches.push(structuredClone(rd));
      for (const m of [...rd.early, ...rd.messages]) this.inbox.push({ from: id, ...m });
      node.advance();
    }
    return batches;
  }

  /** Delivers queued messages (only those to `to`, if given) until none are left. */
  deliverAll(to?: NodeId): void {
    for (let guard = 0; guard < 1000; guard++) {
      const i = this.inbox.findIndex((m) => to === undefined || m.to === to);
      if (i < 0) return;
      const [m] = this.inbox.splice(i, 1);
      if (m === undefined) return;
      this.node(m.to).receive(this.now, m.from, m.msg);
      this.drain(m.to);
    }
    throw new Error('messages kept coming');
  }
}

const put = (key: string, seq: number) =>
  ({ type: 'kv', id: seq, session: 1, seq, op: { f: 'put', key, value: 'v' } }) as const;

describe('RaftKvReplica', () => {
  it('answers a committed write early, in the batch that also writes newer entries', () => {
    const c = new Cluster();
    c.node(1).request(c.now, 9, { type: 'campaign', id: 1 });
    c.drain(1);
    c.deliverAll();
    expect(c.node(1).status().role).toBe('leader');

    c.node(1).request(c.now, 10, put('a', 1));
    c.drain(1);
    // The followers write 'a' and ack; the acks wait while the leader takes a second write.
    c.deliverAll(2);
    c.deliverAll(3);
    c.node(1).request(c.now, 11, put('b', 2));
    const acks = c.inbox.splice(0);
    for (const m of acks) c.node(1).receive(c.now, m.from, m.msg);
    const [batch] = c.drain(1);

    // One batch persists 'b' and answers 'a': the answer need not wait for that write.
    expect(batch?.persist.some((p) => p.kind === 'entries')).toBe(true);
    expect(batch?.earlyReplies).toContainEqual({
      client: 10,
      reply: { type: 'result', id: 1, result: expect.objectContaining({ f: 'put' }) },
    });
    expect(batch?.replies).toEqual([]);
  });

  it('answers awaitApplied on a follower once it applies the write, and not an overtaken one', () => {
    const c = new Cluster();
    c.node(1).request(c.now, 9, { type: 'campaign', id: 1 });
    c.drain(1);
    c.deliverAll();
    const follower = c.node(2);
    const awaitApplied = (seq: number) =>
      ({ type: 'awaitApplied', id: seq, session: 1, seq }) as const;
    const answersTo2 = (batches: Ready<RaftKvTypes>[]) => batches.flatMap((b) => b.earlyReplies);
    /** Delivers everything in flight; returns the follower's batches. */
    const deliverWatching = (): Ready<RaftKvTypes>[] => {
      const seen: Ready<RaftKvTypes>[] = [];
      for (let guard = 0; guard < 1000 && c.inbox.length > 0; guard++) {
        const [m] = c.inbox.splice(0, 1);
        if (m === undefined) break;
        c.node(m.to).receive(c.now, m.from, m.msg);
        const batches = c.drain(m.to);
        if (m.to === 2) seen.push(...batches);
      }
      return seen;
    };
    /** Writes, then a heartbeat round that tells the followers the commit index. */
    const commitAndTell = (...seqs: number[]): Ready<RaftKvTypes>[] => {
      for (const seq of seqs) c.node(1).request(c.now, 10 + seq, put(`k${seq}`, seq));
      c.drain(1);
      const seen = deliverWatching();
      c.now += 1000;
      c.node(1).tick(c.now);
      c.drain(1);
      return [...seen, ...deliverWatching()];
    };

    follower.request(c.now, 20, awaitApplied(1));
    expect(answersTo2(c.drain(2))).toEqual([]); // not applied yet
    const applied = commitAndTell(1);
    const result = { type: 'result', id: 1, result: expect.objectContaining({ f: 'put' }) };
    expect(answersTo2(applied)).toEqual([{ client: 20, reply: result }]);
    // Asked again once applied: answered at once.
    follower.request(c.now, 21, awaitApplied(1));
    expect(answersTo2(c.drain(2))).toEqual([{ client: 21, reply: result }]);
    // Seq 2 is overtaken by seq 3 before this node applies either: its result is not kept.
    follower.request(c.now, 22, awaitApplied(2));
    c.drain(2);
    const later = commitAndTell(2, 3);
    expect(follower.machine.lastSeqOf(1)).toBe(3);
    expect(answersTo2(later)).toEqual([]);
  });

  it('encodes a large compaction a slice per input, then compacts at the index it began', () => {
    const c = new Cluster({ ...defaultReplicaOptions, snapshotEveryEntries: 2500 });
    c.node(1).request(c.now, 9, { type: 'campaign', id: 1 });
    c.drain(1);
    c.deliverAll();
    // Distinct keys: a snapshot of more than one slice of the encoder.
    const leader = c.node(1);
    let snapshotWhenDue = -1;
    for (let i = 1; i <= 2510; i++) {
      c.node(1).request(c.now, 100, put(`k${i}`, i));
      c.drain(1);
      c.deliverAll();
      if (snapshotWhenDue < 0 && leader.machine.appliedIndex >= 2500) {
        snapshotWhenDue = leader.status().snapshotIndex;
      }
    }
    expect(snapshotWhenDue).toBe(0); // begun in the batch that reached 2500, not finished
    // Finished during later inputs, at the index it began at, though more was applied since.
    expect(leader.status().snapshotIndex).toBe(2500);
    expect(leader.machine.appliedIndex).toBeGreaterThan(2500);
  });
});
