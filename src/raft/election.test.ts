import { describe, expect, it } from 'vitest';
import { Rng } from '../kernel/rng.ts';
import { defaultRaftOptions } from './config.ts';
import { RaftCore } from './core.ts';
import { makeConfig } from './membership.ts';
import { Network } from './testing.ts';

const noPreVote = { preVote: false, checkQuorum: false };

describe('leader election (Raft paper section 5.2)', () => {
  it('elects exactly one leader after the election timeout, and all nodes agree on its term', () => {
    const net = new Network<string>({ ids: [1, 2, 3], seed: 7 });
    net.run(400);
    const leaders = net.views().filter((v) => v.status.role === 'leader');
    expect(leaders).toHaveLength(1);
    for (const v of net.views()) expect(v.status.term).toBe(leaders[0]?.status.term);
    for (const v of net.views()) expect(v.status.commit).toBe(1); // the leader's no-op
  });

  it('draws each election timeout in [min, max] and re-draws it at every reset', () => {
    const opts = defaultRaftOptions<string>();
    const core = RaftCore.create<string>(1, makeConfig([1, 2, 3]), opts, Rng.fromSeed(3));
    expect(core.deadline()).toBe(0); // the first tick draws the first timeout
    core.tick(0);
    const seen = new Set<number>();
    let now = 0;
    for (let i = 0; i < 40; i++) {
      const d = core.deadline() - now;
      expect(d).toBeGreaterThanOrEqual(150);
      expect(d).toBeLessThanOrEqual(300);
      seen.add(d);
      now = core.deadline();
      core.tick(now); // times out: a pre-vote round starts and the timer is re-drawn
      while (core.ready()) core.advance();
    }
    expect(seen.size).toBeGreaterThan(10);
  });

  it('grants one vote per term and persists it in the same batch as the reply (figure 2)', () => {
    const opts = { ...defaultRaftOptions<string>(), ...noPreVote };
    const voter = RaftCore.create<string>(3, makeConfig([1, 2, 3]), opts, Rng.fromSeed(1));
    const ask = {
      type: 'requestVote',
      term: 5,
      lastLogIndex: 0,
      lastLogTerm: 0,
      preVote: false,
      transfer: false,
    } as const;
    voter.receive(0, 1, ask);
    const rd = voter.ready();
    expect(rd?.persist).toEqual([{ kind: 'hardState', state: { term: 5, vote: 1, commit: 0 } }]);
    expect(rd?.messages).toEqual([
      { to: 1, msg: { type: 'requestVoteReply', term: 5, granted: true, preVote: false } },
    ]);
    voter.advance();
    voter.receive(1, 2, ask);
    expect(voter.ready()?.messages[0]?.msg).toMatchObject({ granted: false });
    voter.advance();
    voter.receive(2, 1, ask); // a duplicate of the first request is granted again
    expect(voter.ready()?.messages[0]?.msg).toMatchObject({ granted: true });
  });

  it('refuses a candidate whose log is less up to date (election restriction, section 5.4.1)', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: noPreVote });
    net.elect(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.stabilize();
    net.heal();
    net.request(3, { type: 'campaign', id: 1 });
    net.stabilize();
    expect(net.core(3).status().role).not.toBe('leader');
    expect(net.core(1).log().lastIndex).toBe(2);
    net.run(600);
    expect(net.leader()).not.toBe(3);
  });

  it('resolves a split vote with the next randomized timeout (section 5.2)', () => {
    const net = new Network<string>({ ids: [1, 2, 3, 4], raft: noPreVote, seed: 11 });
    net.request(1, { type: 'campaign', id: 1 });
    net.request(2, { type: 'campaign', id: 2 });
    // 3 hears 1 first and 4 hears 2 first: two votes each, no majority of four.
    net.deliver((e) => (e.from === 1 && e.to === 3) || (e.from === 2 && e.to === 4));
    net.stabilize();
    expect(net.views().filter((v) => v.status.role === 'leader')).toHaveLength(0);
    // Each sees it cannot reach a majority (2 of 4 voted against it) and waits for its timeout.
    for (const id of [1, 2, 3, 4]) expect(net.core(id).status().term).toBe(1);
    net.run(1000);
    const leader = net.leader();
    expect(leader).toBeDefined();
    expect(net.core(leader as number).status().term).toBeGreaterThan(1);
  });

  it('drops stale-term messages and answers with the newer term (section 5.1)', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: noPreVote });
    net.elect(1);
    net.propose(1, 'stale');
    const staleAppends = [...net.inFlight];
    net.inFlight = [];
    net.isolate(1);
    net.elect(2); // term 2
    net.heal();
    net.inFlight = staleAppends.filter((e) => e.to === 3);
    expect(net.inFlight.length).toBeGreaterThan(0);
    const before = net.core(3).log().lastIndex;
    net.deliver();
    expect(net.core(3).log().lastIndex).toBe(before);
    expect(net.core(3).status().dropped['stale-term']).toBeGreaterThan(0);
    expect(net.inFlight.some((e) => e.to === 1 && e.msg.term === 2)).toBe(true);
    net.stabilize();
    expect(net.core(1).status()).toMatchObject({ role: 'follower', term: 2 });
    net.run(100);
    expect(net.core(1).status().leader).toBe(2);
    expect(net.appliedData(1)).toEqual([]); // the stale proposal was never committed
  });
});
