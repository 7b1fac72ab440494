import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import { Network } from './testing.ts';
import type { AppendMsg } from './types.ts';

const appendsTo = (net: Network<string>, to: NodeId) =>
  net.inFlight
    .filter((e) => e.to === to && e.msg.type === 'append')
    .map((e) => e.msg as AppendMsg<string>);

describe('log replication (Raft paper section 5.3)', () => {
  it('finds the matching point of a divergent follower in a few round trips (fast backtracking)', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: { preVote: false, checkQuorum: false },
    });
    net.elect(1);
    net.isolate(1);
    for (let i = 0; i < 30; i++) net.propose(1, `doomed-${i}`); // 30 entries of term 1 only on node 1
    net.heal();
    net.isolate(1);
    net.elect(2);
    for (let i = 0; i < 5; i++) net.propose(2, `good-${i}`);
    net.stabilize();
    net.crash(1); // node 1 returns as a follower with its divergent suffix
    net.restart(1);
    net.heal();
    let rejections = 0;
    for (
      let step = 0;
      step < 50 && net.core(1).log().lastIndex !== net.core(2).log().lastIndex;
      step++
    ) {
      net.elapse(net.opts.heartbeatIntervalMs);
      rejections += net.inFlight.filter(
        (e) => e.msg.type === 'appendReply' && !e.msg.success,
      ).length;
      net.stabilize();
      rejections += 0;
    }
    const log1 = net.core(1).log();
    expect(log1.lastIndex).toBe(net.core(2).log().lastIndex);
    expect(log1.term(2)).toBe(2); // the divergent entries were replaced
    expect(net.core(1).status().dropped['stale-reply']).toBeLessThan(5);
    const probes = net.core(2).status().progress.get(1);
    expect(probes?.state).toBe('replicate');
    expect(rejections).toBeLessThanOrEqual(2); // one hint skips the whole term-1 suffix
  });

  it('batches proposals into one append per follower and pipelines up to inflightMsgsMax', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: { appendEntriesMax: 4, inflightMsgsMax: 2 },
    });
    net.elect(1);
    for (let i = 0; i < 20; i++) net.request(1, { type: 'propose', id: i, data: `v${i}` });
    // The core is driven without flushing in between? `request` flushes: each proposal went out
    // alone until the window filled; after that nothing more leaves until acks come back.
    const sent = appendsTo(net, 2);
    expect(sent.length).toBe(2);
    net.stabilize();
    for (const id of [1, 2, 3]) expect(net.appliedData(id)).toHaveLength(20);
  });

  it('puts many entries into one append when they arrive between two batches', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: { appendEntriesMax: 8 } });
    net.elect(1);
    const core = net.core(1);
    for (let i = 0; i < 20; i++)
      core.request(net.now, 99, { type: 'propose', id: i, data: `v${i}` });
    net.flush(1);
    const sent = appendsTo(net, 2);
    expect(sent.map((m) => m.entries.length)).toEqual([8, 8, 4]);
    net.stabilize();
    expect(net.appliedData(3)).toHaveLength(20);
  });

  it('bounds in-flight bytes per follower by inflightBytesMax', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: {
        sizeOf: (s: string) => s.length,
        inflightBytesMax: 100,
        inflightMsgsMax: 100,
        appendEntriesMax: 1,
      },
    });
    net.elect(1);
    const core = net.core(1);
    for (let i = 0; i < 10; i++)
      core.request(net.now, 99, { type: 'propose', id: i, data: 'x'.repeat(40) });
    net.flush(1);
    expect(core.status().progress.get(2)?.inflightBytes).toBeLessThanOrEqual(100 + 40);
    expect(appendsTo(net, 2).length).toBe(3);
    net.stabilize();
    expect(net.appliedData(2)).toHaveLength(10);
  });

  it('recovers when a whole in-flight window of appends is lost (found by the sweep)', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: { inflightMsgsMax: 2, appendEntriesMax: 1 },
    });
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    expect(net.drop((e) => e.msg.type === 'append' && e.to === 2)).toBe(2);
    expect(net.core(1).status().progress.get(2)).toMatchObject({
      state: 'replicate',
      inflightMsgs: 2,
    });
    net.run(200);
    expect(net.appliedData(2)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  it('refuses proposals beyond uncommittedEntriesMax instead of queueing them', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: { uncommittedEntriesMax: 5 } });
    net.elect(1);
    net.isolate(1);
    const replies = Array.from({ length: 8 }, (_, i) => net.propose(1, `v${i}`).type);
    expect(replies).toEqual([
      'accepted',
      'accepted',
      'accepted',
      'accepted',
      'accepted',
      'rejected',
      'rejected',
      'rejected',
    ]);
    expect(net.propose(1, 'more')).toMatchObject({ type: 'rejected', reason: 'uncommitted-cap' });
    net.heal();
    net.run(100);
    expect(net.propose(1, 'again').type).toBe('accepted');
  });

  it('hands at most applyBatchEntriesMax entries to the host per batch, asking for another tick', () => {
    const net = new Network<string>({ ids: [1], raft: { applyBatchEntriesMax: 3 } });
    net.elect(1);
    const core = net.core(1);
    for (let i = 0; i < 7; i++) core.request(net.now, 1, { type: 'propose', id: i, data: `v${i}` });
    const sizes: number[] = [];
    for (let rd = core.ready(); rd !== undefined; rd = core.ready()) {
      sizes.push(rd.deliver.length);
      core.advance();
      expect(core.deadline()).toBe(net.now); // more to deliver: tick now
    }
    // The first batch writes the entries; a lone voter commits them once its disk holds them.
    expect(sizes).toEqual([0, 3, 3, 1]);
  });

  it('redirects proposals on a follower with a leader hint', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(2);
    net.run(60);
    expect(net.propose(3, 'x')).toMatchObject({ type: 'notLeader', leaderHint: 2 });
  });
});
