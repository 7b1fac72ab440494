import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import { ReadIndexTracker } from './read-index.ts';
import { Network } from './testing.ts';
import type { RaftReply } from './types.ts';

function repliesOf(net: Network<string>, id: NodeId): RaftReply[] {
  return net.node(id).replies.map((r) => r.reply);
}

describe('ReadIndex (dissertation 6.4)', () => {
  it('answers a read only after a quorum acknowledged a heartbeat round sent after it arrived', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    net.propose(1, 'a');
    net.stabilize();
    expect(net.request(1, { type: 'read', id: 77 })).toEqual([]); // not yet
    expect(net.inFlight.filter((e) => e.msg.type === 'heartbeat')).toHaveLength(2);
    net.deliver((e) => e.msg.type === 'heartbeat' && e.to === 2);
    net.deliver((e) => e.msg.type === 'heartbeatReply');
    expect(repliesOf(net, 1)).toContainEqual({ type: 'readReady', id: 77, index: 2 });
  });

  it('never confirms a read on a deposed leader cut off from the majority', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: { preVote: false, checkQuorum: false },
    });
    net.elect(1);
    net.isolate(1);
    net.request(1, { type: 'read', id: 5 });
    net.run(1000);
    expect(repliesOf(net, 1).filter((r) => r.type === 'readReady')).toEqual([]);
    net.heal();
    net.run(300);
    expect(repliesOf(net, 1)).toContainEqual(expect.objectContaining({ type: 'notLeader', id: 5 }));
  });

  it('waits for the first commit of the term before fixing a read index', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.request(1, { type: 'campaign', id: 1 });
    net.deliver((e) => e.msg.type === 'requestVote');
    net.deliver((e) => e.msg.type === 'requestVoteReply');
    net.deliver((e) => e.msg.type === 'requestVote');
    net.deliver((e) => e.msg.type === 'requestVoteReply');
    expect(net.core(1).status().role).toBe('leader');
    expect(net.request(1, { type: 'read', id: 9 })).toEqual([]);
    expect(net.core(1).status().pendingReads).toBe(1);
    net.stabilize();
    net.run(60);
    expect(repliesOf(net, 1)).toContainEqual({ type: 'readReady', id: 9, index: 1 });
  });

  it('bounds pending reads by pendingReadsMax', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: { pendingReadsMax: 2 } });
    net.elect(1);
    net.isolate(1);
    net.request(1, { type: 'read', id: 1 });
    net.request(1, { type: 'read', id: 2 });
    expect(net.request(1, { type: 'read', id: 3 })).toEqual([
      { type: 'rejected', id: 3, reason: 'read-cap' },
    ]);
  });

  it('serves lease reads without a round while the lease holds, and not after it expires', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: { leaseReads: true, checkQuorum: true },
    });
    net.elect(1);
    net.run(60); // a confirmed heartbeat round starts the lease
    expect(net.request(1, { type: 'read', id: 1 })).toEqual([
      { type: 'readReady', id: 1, index: 1 },
    ]);
    net.isolate(1);
    net.elapse(net.opts.electionTimeoutMinMs);
    expect(net.request(1, { type: 'read', id: 2 })).toEqual([]);
  });

  it('tracker: a round confirms exactly the reads queued before it, and the lease follows the round', () => {
    const t = new ReadIndexTracker(10, 100);
    t.add({ client: 1, id: 1 }, 5);
    expect(t.needsRound()).toBe(true);
    const r1 = t.startRound(1000);
    t.add({ client: 1, id: 2 }, 6);
    expect(t.confirm(r1)).toEqual([{ client: 1, id: 1, index: 5 }]);
    expect(t.leaseValid(1099)).toBe(true);
    expect(t.leaseValid(1100)).toBe(false);
    const r2 = t.startRound(1050);
    expect(t.confirm(r2)).toEqual([{ client: 1, id: 2, index: 6 }]);
    expect(() => t.confirm(r2 + 1)).toThrow(/never sent/);
  });
});

describe('leadership transfer (dissertation 3.10)', () => {
  it('brings the target up to date, sends TimeoutNow, and the target wins the next term', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.stabilize();
    net.heal();
    const term = net.core(1).status().term;
    expect(net.request(1, { type: 'transferLeadership', id: 1, to: 3 })).toEqual([
      { type: 'done', id: 1 },
    ]);
    expect(net.propose(1, 'during')).toMatchObject({
      type: 'rejected',
      reason: 'transfer-in-progress',
    });
    net.run(100); // the appends 3 missed are recovered at the next heartbeat
    expect(net.core(3).status()).toMatchObject({ role: 'leader', term: term + 1 });
    expect(net.core(1).status().role).toBe('follower');
    net.propose(3, 'b');
    net.run(100);
    expect(net.appliedData(1)).toEqual(['a', 'b']);
  });

  it('is aborted after an election timeout if the target does not take over', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    net.isolate(3);
    net.request(1, { type: 'transferLeadership', id: 1, to: 3 });
    net.run(net.opts.electionTimeoutMinMs + 20);
    const events = net.node(1).events.filter((e) => e.type === 'transferAborted');
    expect(events).toHaveLength(1);
    expect(net.core(1).status()).toMatchObject({ role: 'leader', transferee: 0 });
    expect(net.propose(1, 'after').type).toBe('accepted');
  });

  it('refuses a target that is not a voter', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    expect(net.request(1, { type: 'transferLeadership', id: 4, to: 9 })).toEqual([
      { type: 'rejected', id: 4, reason: 'not-a-voter' },
    ]);
  });
});

describe('pre-vote and check-quorum (dissertation 9.6, 6.2)', () => {
  it('lets a partitioned follower rejoin without raising the term or deposing the leader', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: { preVote: true, checkQuorum: true } });
    net.elect(1);
    const term = net.core(1).status().term;
    net.isolate(3);
    net.run(2000);
    expect(net.core(3).status().term).toBe(term); // pre-votes failed, no term was raised
    net.heal();
    net.run(500);
    expect(net.core(1).status()).toMatchObject({ role: 'leader', term });
    expect(net.core(3).status().leader).toBe(1);
  });

  it('ignores vote requests while a current leader is heard from (leader stickiness)', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: { preVote: false, checkQuorum: true },
    });
    net.elect(1);
    net.run(40);
    net.core(2).receive(net.now, 3, {
      type: 'requestVote',
      term: 50,
      lastLogIndex: 99,
      lastLogTerm: 49,
      preVote: false,
      transfer: false,
    });
    net.flush(2);
    expect(net.core(2).status()).toMatchObject({ term: 1, leader: 1 });
    expect(net.core(2).status().dropped['leader-lease']).toBe(1);
  });
});

describe('leases across follower restarts (dissertation 6.4.1)', () => {
  it('a restarted follower refuses votes for one minimum election timeout', () => {
    const net = new Network<string>({
      ids: [1, 2, 3],
      raft: { preVote: false, checkQuorum: true },
    });
    net.elect(1);
    net.run(60);
    net.crash(2);
    net.restart(2);
    const ask = {
      type: 'requestVote',
      term: 9,
      lastLogIndex: 99,
      lastLogTerm: 8,
      preVote: false,
      transfer: false,
    } as const;
    net.core(2).receive(net.now, 3, ask);
    net.flush(2);
    expect(net.core(2).status()).toMatchObject({ term: 1, vote: 1 });
    expect(net.core(2).status().dropped['leader-lease']).toBe(1);
    net.now += net.opts.electionTimeoutMinMs;
    net.inFlight = [];
    net.core(2).receive(net.now, 3, ask);
    net.flush(2);
    expect(net.core(2).status()).toMatchObject({ term: 9, vote: 3 });
  });
});
