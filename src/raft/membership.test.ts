import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import { applyChange, makeConfig } from './membership.ts';
import { Network } from './testing.ts';
import type { MembershipChange, RaftReply } from './types.ts';

function change(net: Network<string>, at: NodeId, c: MembershipChange): RaftReply | undefined {
  return net.request(at, { type: 'changeMembership', id: net.requestId(), change: c })[0];
}

describe('single-server membership changes with learners (dissertation 4.1, 4.2)', () => {
  it('applyChange: adds learners, promotes them, removes nodes, refuses the impossible', () => {
    const c = makeConfig([1, 2, 3]);
    expect(applyChange(c, { type: 'addLearner', node: 4 })).toEqual(makeConfig([1, 2, 3], [4]));
    expect(applyChange(makeConfig([1, 2, 3], [4]), { type: 'promote', node: 4 })).toEqual(
      makeConfig([1, 2, 3, 4]),
    );
    expect(applyChange(c, { type: 'remove', node: 2 })).toEqual(makeConfig([1, 3]));
    expect(applyChange(c, { type: 'addLearner', node: 2 })).toBeUndefined();
    expect(applyChange(c, { type: 'promote', node: 2 })).toBeUndefined();
    expect(applyChange(makeConfig([1]), { type: 'remove', node: 1 })).toBeUndefined();
  });

  it('adds a learner that catches up without voting, then promotes it to a voter', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.stabilize();
    net.addNode(4, makeConfig([], []));
    expect(change(net, 1, { type: 'addLearner', node: 4 })?.type).toBe('accepted');
    net.run(200);
    expect(net.appliedData(4)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    expect(net.core(4).status().config).toEqual(makeConfig([1, 2, 3], [4]));
    expect(net.core(4).deadline()).toBe(Number.POSITIVE_INFINITY); // a learner never campaigns

    // With 2 and 3 down, the learner's acknowledgement does not make a quorum.
    net.isolate(2);
    net.isolate(3);
    net.propose(1, 'needs-a-voter');
    net.run(100);
    expect(net.core(1).status().commit).toBeLessThan(net.core(1).status().lastIndex);
    net.heal();
    net.run(100);

    expect(change(net, 1, { type: 'promote', node: 4 })?.type).toBe('accepted');
    net.run(100);
    expect(net.core(1).status().config.voters).toEqual([1, 2, 3, 4]);
    // Now 1, 2 and 4 are a quorum of four.
    net.isolate(3);
    net.propose(1, 'with-4');
    net.run(100);
    expect(net.appliedData(4)).toContain('with-4');
  });

  it('accepts one change at a time', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    net.isolate(1);
    expect(change(net, 1, { type: 'addLearner', node: 4 })?.type).toBe('accepted');
    expect(change(net, 1, { type: 'addLearner', node: 5 })).toMatchObject({
      type: 'rejected',
      reason: 'change-in-progress',
    });
    expect(change(net, 1, { type: 'promote', node: 7 })).toMatchObject({
      type: 'rejected',
      reason: 'change-in-progress',
    });
  });

  it('refuses to promote a learner that is far behind', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: { appendEntriesMax: 2 } });
    net.elect(1);
    net.addNode(4, makeConfig([], []));
    change(net, 1, { type: 'addLearner', node: 4 });
    net.stabilize();
    net.isolate(4);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.run(60);
    expect(change(net, 1, { type: 'promote', node: 4 })).toMatchObject({
      type: 'rejected',
      reason: 'learner-not-caught-up',
    });
  });

  it('a leader that removes itself steps down once the change commits; the rest elect a leader', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    expect(change(net, 1, { type: 'remove', node: 1 })?.type).toBe('accepted');
    net.stabilize();
    expect(net.core(1).status()).toMatchObject({ role: 'follower' });
    net.run(1000);
    const leader = net.leader();
    expect([2, 3]).toContain(leader);
    expect(net.core(leader as NodeId).status().config.voters).toEqual([2, 3]);
    expect(net.core(1).deadline()).toBe(Number.POSITIVE_INFINITY); // no longer campaigns
  });

  it('a leader that removed itself and lost its quorum before the change committed still campaigns, so the cluster is not stuck', () => {
    // Found by the membership property test (fast-check seed -185681640): the only voter
    // left behind held a shorter log, so it could never win, and the removed leader, the
    // one that could, did not stand because it was no longer a voter (dissertation 4.2.2).
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    expect(change(net, 1, { type: 'remove', node: 3 })?.type).toBe('accepted');
    net.stabilize();
    expect(net.core(2).status().config.voters).toEqual([1, 2]);
    net.isolate(1);
    expect(change(net, 1, { type: 'remove', node: 1 })?.type).toBe('accepted');
    expect(net.core(1).status().config.voters).toEqual([2]); // in force, not committed
    net.run(1000); // check-quorum: the isolated leader steps down
    expect(net.core(1).status().role).not.toBe('leader');
    net.heal();
    net.run(3000);
    expect(net.leader()).toBe(2);
    expect(net.core(2).status().config.voters).toEqual([2]);
    expect(net.core(1).deadline()).toBe(Number.POSITIVE_INFINITY); // the change committed: it stops
  });

  it('reverts an uncommitted change when a crash truncates it (the config follows the log)', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: { preVote: false, checkQuorum: false },
    });
    net.elect(1);
    net.isolate(1);
    change(net, 1, { type: 'remove', node: 3 });
    expect(net.core(1).status().config.voters).toEqual([1, 2]); // in force once appended
    net.crash(1);
    net.restart(1);
    expect(net.core(1).status().config.voters).toEqual([1, 2]); // and durable
    net.heal();
    net.isolate(1);
    net.elect(2);
    net.propose(2, 'x');
    net.stabilize();
    net.heal();
    net.run(300);
    expect(net.core(1).status().config.voters).toEqual([1, 2, 3]);
    expect(net.appliedData(1)).toEqual(['x']);
    expect(
      net.node(1).events.some((e) => e.type === 'configChanged' && e.config.voters.length === 3),
    ).toBe(true);
  });
});
