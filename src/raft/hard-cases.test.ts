import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import type { RaftTestingFaults } from './config.ts';
import type { RaftNodeView } from './invariants.ts';
import { Network } from './testing.ts';

/** The paper's hard cases as scenarios. The network's safety checker runs after every step. */

const noPreVote = { preVote: false, checkQuorum: false };

/** Campaign on `id` until it wins (competing terms may need a few rounds). */
function electEventually(net: Network<string>, id: NodeId): void {
  for (let i = 0; i < 10 && net.core(id).status().role !== 'leader'; i++) {
    net.request(id, { type: 'campaign', id: net.requestId() });
    net.stabilize();
  }
  expect(net.core(id).status().role).toBe('leader');
}

function termAt(net: Network<string>, id: NodeId, index: number): number | undefined {
  return net.core(id).log().term(index);
}

/**
 * Figure 8 set-up, (a)–(c): S1 leads term 1 and gets index 2 only onto S2; S5 wins term 2 and
 * writes index 2 (term 2) only locally; S1 comes back, leads term 3 and copies its index 2
 * (term 1) onto S3 and S4 — a majority with itself — while its own no-op at index 3 reaches
 * nobody. (The paper uses S1, S2, S3; S2 already holds index 2, so here S1 learns of the
 * majority through S3 and S4.)
 */
function figure8(unsafe: RaftTestingFaults = {}): Network<string> {
  const net = new Network<string>({
    ids: [1, 2, 3, 4, 5],
    raft: { ...noPreVote, appendEntriesMax: 1, unsafeTestingFaults: unsafe },
  });
  net.elect(1);
  net.partition([1, 2], [3, 4, 5]);
  net.propose(1, 'from-term-1');
  net.stabilize();
  expect(termAt(net, 2, 2)).toBe(1);

  net.crash(1);
  net.partition([1], [2], [3, 4, 5]);
  net.request(5, { type: 'campaign', id: net.requestId() });
  net.deliver((e) => e.msg.type === 'requestVote');
  net.deliver((e) => e.msg.type === 'requestVoteReply');
  expect(net.core(5).status()).toMatchObject({ role: 'leader', term: 2 });
  net.drop(); // S5's no-op (index 2, term 2) reaches nobody
  net.crash(5);

  net.restart(1);
  net.partition([1, 2, 3, 4], [5]);
  const votes = (e: { msg: { type: string } }) => e.msg.type.startsWith('requestVote');
  for (let i = 0; i < 10 && net.core(1).status().role !== 'leader'; i++) {
    net.request(1, { type: 'campaign', id: net.requestId() });
    while (net.deliver(votes) > 0) {
      // votes and their replies only: S1's appends stay in flight
    }
  }
  expect(net.core(1).status().term).toBeGreaterThanOrEqual(3);
  return net;
}

describe('commitment rules (Raft paper section 5.4.2, figure 8)', () => {
  it('does not commit an entry of an earlier term just because a majority stores it', () => {
    const net = figure8();
    // S1's appends are in flight. Let S3 and S4 (which lack index 2) take index 2 alone, and
    // hold back every append that would carry S1's own no-op at index 3.
    const s1 = net.core(1);
    const term = s1.status().term;
    const safe = (e: (typeof net.inFlight)[number]) => {
      if (e.msg.type !== 'append') return true;
      if (e.to !== 3 && e.to !== 4) return false;
      const last = net.core(e.to).log().lastIndex;
      return e.msg.prevIndex > last || e.msg.entries.every((x) => x.index < 3);
    };
    for (let k = net.inFlight.findIndex(safe); k >= 0; k = net.inFlight.findIndex(safe))
      net.deliverAt(k);
    net.drop();
    expect([1, 3, 4].map((id) => termAt(net, id, 2))).toEqual([1, 1, 1]);
    expect(termAt(net, 1, 3)).toBe(term);
    expect([3, 4].map((id) => s1.status().progress.get(id)?.match)).toEqual([2, 2]);
    expect(s1.status().commit).toBe(1); // stored on a majority, yet not committed

    // (d): S1 crashes, S5 returns and wins with S2, S3, S4; its index 2 (term 2) replaces S1's.
    net.crash(1);
    net.restart(5);
    net.partition([1], [2, 3, 4, 5]);
    electEventually(net, 5);
    net.stabilize();
    for (const id of [2, 3, 4, 5]) expect(termAt(net, id, 2)).toBe(2);
    for (const id of [2, 3, 4, 5]) expect(net.appliedData(id)).not.toContain('from-term-1');
  });

  it('catches a leader that commits an earlier-term entry by counting (the checks bite)', () => {
    const net = figure8({ commitPriorTermsByCounting: true });
    const s1 = net.core(1);
    const safe = (e: (typeof net.inFlight)[number]) => {
      if (e.msg.type !== 'append') return true;
      if (e.to !== 3 && e.to !== 4) return false;
      const last = net.core(e.to).log().lastIndex;
      return e.msg.prevIndex > last || e.msg.entries.every((x) => x.index < 3);
    };
    for (let k = net.inFlight.findIndex(safe); k >= 0; k = net.inFlight.findIndex(safe))
      net.deliverAt(k);
    net.drop();
    expect(s1.status().commit).toBe(2); // the unsafe rule committed index 2 of term 1
    net.crash(1);
    net.restart(5);
    net.partition([1], [2, 3, 4, 5]);
    // S5 overwrites the committed entry: the network's safety checker must object.
    expect(() => {
      electEventually(net, 5);
      net.stabilize();
    }).toThrow(/state machine safety|leader completeness/);
  });

  it('commits the earlier entry together with one of the current term (figure 8 (e))', () => {
    const net = figure8();
    net.stabilize();
    const s1 = net.core(1).status();
    expect(s1.commit).toBe(s1.lastIndex);
    for (const id of [1, 2, 3]) expect(net.appliedData(id)).toEqual(['from-term-1']);
    // With index 3 (term >= 3) committed, S5 can never win again: its last term 2 is behind.
    net.restart(5);
    net.heal();
    net.request(5, { type: 'campaign', id: net.requestId() });
    net.stabilize();
    expect(net.core(5).status().role).not.toBe('leader');
  });
});

describe('a partitioned old leader (sections 5.4, 6.2)', () => {
  it('keeps accepting writes it can never commit, and loses them when the partition heals', () => {
    const net = new Network<string>({ ids: [1, 2, 3, 4, 5], raft: noPreVote });
    net.elect(1);
    net.partition([1, 2], [3, 4, 5]);
    for (const v of ['lost-1', 'lost-2', 'lost-3']) expect(net.propose(1, v).type).toBe('accepted');
    net.stabilize();
    net.run(2000); // without check-quorum it stays leader for as long as it likes
    expect(net.core(1).status().role).toBe('leader');
    expect(net.core(1).status().commit).toBe(1);

    const newLeader = net.leader() === 1 ? undefined : net.leader();
    expect([3, 4, 5]).toContain(
      net.views().find((v) => v.status.role === 'leader' && v.status.id !== 1)?.status.id,
    );
    void newLeader;
    const other = net.views().find((v) => v.status.role === 'leader' && v.status.id !== 1)?.status
      .id as NodeId;
    net.propose(other, 'kept');
    net.stabilize();
    net.heal();
    net.run(300);
    for (const id of [1, 2, 3, 4, 5]) expect(net.appliedData(id)).toEqual(['kept']);
    expect(net.core(1).status().role).toBe('follower');
  });

  it('steps down after a minimum election timeout without a quorum when check-quorum is on', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: { preVote: true, checkQuorum: true } });
    net.elect(1);
    net.isolate(1);
    net.elapse(2 * net.opts.electionTimeoutMinMs + 1);
    expect(net.core(1).status()).toMatchObject({ role: 'follower', leader: 0 });
    expect(net.propose(1, 'x')).toMatchObject({ type: 'notLeader', leaderHint: 0 });
  });
});

describe('lost, duplicated and reordered messages (section 5.3)', () => {
  it('applies every committed entry exactly once, in order', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: { appendEntriesMax: 2 } });
    net.elect(1);
    const values = Array.from({ length: 12 }, (_, i) => `v${i}`);
    for (const [i, v] of values.entries()) {
      net.propose(1, v);
      net.flush(1);
      if (i % 3 === 0) net.drop((e) => e.msg.type === 'append' && e.to === 2); // lost
      net.duplicate(); // every message twice
      net.inFlight.reverse(); // and out of order
      net.deliver();
    }
    net.run(300);
    for (const id of [1, 2, 3]) expect(net.appliedData(id)).toEqual(values);
  });
});

describe('a removed member that keeps campaigning (dissertation 4.2.3, 9.6)', () => {
  const removeFour = (preVote: boolean): Network<string> => {
    const net = new Network<string>({ ids: [1, 2, 3, 4], raft: { preVote, checkQuorum: preVote } });
    net.elect(1);
    net.propose(1, 'before');
    net.stabilize();
    net.isolate(4); // 4 never learns it was removed
    const [reply] = net.request(1, {
      type: 'changeMembership',
      id: 1,
      change: { type: 'remove', node: 4 },
    });
    expect(reply?.type).toBe('accepted');
    net.stabilize();
    net.run(100);
    expect(net.core(1).status().config.voters).toEqual([1, 2, 3]);
    expect(net.core(4).status().config.voters).toEqual([1, 2, 3, 4]);
    net.run(1000); // 4 times out again and again
    net.heal();
    return net;
  };
  const leaderTerm = (net: Network<string>) => net.core(1).status().term;

  it('cannot disrupt the cluster when pre-vote is on', () => {
    const net = removeFour(true);
    const term = leaderTerm(net);
    expect(net.core(4).status().term).toBe(term); // pre-votes never raised its term
    net.run(2000);
    expect(net.core(1).status()).toMatchObject({ role: 'leader', term });
    expect(net.propose(1, 'after').type).toBe('accepted');
    net.run(100);
    expect(net.appliedData(2)).toEqual(['before', 'after']);
  });

  it('does disrupt it without pre-vote: its higher term deposes the leader', () => {
    const net = removeFour(false);
    const term = leaderTerm(net);
    expect(net.core(4).status().term).toBeGreaterThan(term);
    net.request(4, { type: 'campaign', id: 9 });
    net.stabilize();
    const views: RaftNodeView<string>[] = net.views();
    expect(views.find((v) => v.status.id === 1)?.status.term).toBeGreaterThan(term);
  });
});
