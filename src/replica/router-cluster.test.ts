import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import { encodeMemberRecord, memberKey, removedKey } from './members.ts';
import type { MemberChange } from './router-msgs.ts';
import { call, RoutedRaftCluster } from './testing/routed.ts';

/**
 * Whole Raft KV nodes (router + replica) joined by a hand-driven network: forwarding and
 * removal as real nodes do them, checked without sockets or real time (what the server's
 * peer-forward and removal tests did on real engines).
 */

/** Asks `at` (the leader unless given) to remove `id` for good, as `quorate member remove` does. */
function remove(c: RoutedRaftCluster, leader: NodeId, id: NodeId, at: NodeId = leader): void {
  c.request(at, 900, member(900, { type: 'remove', node: id }));
  c.run(c.now + 800);
  expect(memberOutcomes(c, at, 900)).toEqual([{ type: 'done' }]);
}

function member(id: number, change: MemberChange) {
  return { type: 'member', id, change, timeoutMs: 2000, forward: true } as const;
}

/** How node `id`'s membership calls for client `client` ended. */
function memberOutcomes(c: RoutedRaftCluster, id: NodeId, client: number) {
  return c
    .node(id)
    .said.replies.filter((r) => r.client === client)
    .flatMap((r) => (r.reply.type === 'member' ? [r.reply.outcome] : []));
}

function removedNotices(c: RoutedRaftCluster, id: NodeId) {
  return c.notices(id).filter((n) => n.type === 'removedFromCluster');
}

describe('a write and a read sent to a follower', () => {
  it('are forwarded, proposed once at the leader, and answered by the follower', () => {
    const c = new RoutedRaftCluster([1, 2, 3]);
    const leader = c.leader();
    const follower = ([1, 2, 3] as const).find((id) => id !== leader) as NodeId;
    c.request(follower, 7, call(1, { f: 'put', key: 'k', value: 'v' }, { session: 5, seq: 1 }));
    c.run(c.now + 200);
    expect(c.answersTo(follower, 7)).toEqual([
      { type: 'result', result: expect.objectContaining({ f: 'put', version: 1 }) },
    ]);
    c.request(follower, 8, call(2, { f: 'get', key: 'k' }));
    c.run(c.now + 200);
    expect(c.answersTo(follower, 8)).toEqual([
      {
        type: 'result',
        result: expect.objectContaining({ entry: expect.objectContaining({ value: 'v' }) }),
      },
    ]);
    const proposed = (id: NodeId) => c.notices(id).filter((n) => n.type === 'proposed').length;
    expect(proposed(leader)).toBe(1);
    expect(proposed(follower)).toBe(0);
  });
});

describe('a membership change asked while another is under way', () => {
  function replies(c: RoutedRaftCluster, id: NodeId, client: number) {
    return c
      .node(id)
      .said.replies.filter((r) => r.client === client)
      .map((r) => r.reply);
  }

  it('is refused at once when asked of the replica as it is, and waited out by the router as a member call', () => {
    const c = new RoutedRaftCluster([1, 2, 3]);
    const leader = c.leader();
    const follower = [1, 2, 3].find((id) => id !== leader) as NodeId;
    const change = (id: number, node: NodeId) =>
      c.request(leader, id, {
        type: 'replica',
        req: { type: 'changeMembership', id, change: { type: 'addLearner', node } },
      });
    change(1, 5);
    change(2, 6);
    // Through a follower: forwarded to the leader, which records the addresses first.
    const seven = { type: 'addLearner', node: 7, peerAddress: 'h:7', clientUrl: 'u7' } as const;
    c.request(follower, 3, member(3, seven));
    c.run(c.now + 1000);
    expect(replies(c, leader, 1)).toEqual([{ type: 'replica', reply: { type: 'done', id: 1 } }]);
    expect(replies(c, leader, 2)).toEqual([
      { type: 'replica', reply: { type: 'rejected', id: 2, reason: 'change-in-progress' } },
    ]);
    expect(memberOutcomes(c, follower, 3)).toEqual([{ type: 'done' }]);
    expect(c.router(leader).replica.status().config.learners).toEqual([5, 7]);
    const record = c.router(follower).replica.machine.read({ f: 'get', key: memberKey(7) });
    expect(record).toMatchObject({ entry: { value: encodeMemberRecord(seven) } });
  });
});

describe('raft: a removal asked of a follower', () => {
  it('is forwarded to the leader, which commits the tombstone before the change', () => {
    const c = new RoutedRaftCluster([1, 2, 3, 4]);
    const leader = c.leader();
    const [asked, gone] = [1, 2, 3, 4].filter((id) => id !== leader) as [NodeId, NodeId];
    remove(c, leader, gone, asked);
    const sent = c.node(asked).said.sent.filter((m) => m.msg.type === 'fwdCall');
    expect(sent.map((m) => m.to)).toEqual([leader]);
    const log = c.router(leader).replica.raft.log();
    let tombstoneAt = 0;
    let changeAt = 0;
    for (let i = log.firstIndex; i <= log.lastIndex; i++) {
      const e = log.entry(i);
      if (e?.kind === 'normal' && e.data.op.f === 'put' && e.data.op.key === removedKey(gone)) {
        tombstoneAt = i;
      }
      if (e?.kind === 'config' && !e.config.voters.includes(gone)) changeAt = i;
    }
    expect(tombstoneAt).toBeGreaterThan(0);
    expect(changeAt).toBeGreaterThan(tombstoneAt);
    // Asked again, it is done already; the retired id is never added back.
    c.request(asked, 901, member(901, { type: 'remove', node: gone }));
    const back = { type: 'addLearner', node: gone, peerAddress: 'h:1', clientUrl: 'u' } as const;
    c.request(asked, 902, member(902, back));
    c.run(c.now + 500);
    expect(memberOutcomes(c, asked, 901)).toEqual([{ type: 'done' }]);
    expect(memberOutcomes(c, asked, 902)).toEqual([
      {
        type: 'refused',
        refusal: { type: 'conflict', reason: expect.stringContaining('retired') },
      },
    ]);
  });

  it('is refused as not-leader naming the leader while the link to it is down', () => {
    const c = new RoutedRaftCluster([1, 2, 3, 4]);
    const leader = c.leader();
    const [asked, gone] = [1, 2, 3, 4].filter((id) => id !== leader) as [NodeId, NodeId];
    c.router(asked).linkChanged(c.now, leader, false);
    c.request(asked, 900, member(900, { type: 'remove', node: gone }));
    expect(memberOutcomes(c, asked, 900)).toEqual([
      { type: 'refused', refusal: { type: 'notLeader', leader } },
    ]);
  });
});

describe('raft: a removed member', () => {
  it('is told by the leader as its removal commits, and every node forgets it', () => {
    const c = new RoutedRaftCluster([1, 2, 3, 4]);
    const leader = c.leader();
    const gone = ([1, 2, 3, 4] as const).find((id) => id !== leader) as NodeId;
    remove(c, leader, gone);
    expect(removedNotices(c, gone)).toEqual([{ type: 'removedFromCluster', toldBy: leader }]);
    for (const id of [1, 2, 3, 4].filter((i) => i !== gone)) {
      expect(c.notices(id)).toContainEqual({ type: 'peerRemoved', id: gone, told: id === leader });
      expect(c.router(id).removedMembers().has(gone)).toBe(true);
    }
    // The others commit on their own.
    c.request(leader, 7, call(7, { f: 'put', key: 'after', value: '1' }));
    c.run(c.now + 200);
    expect(c.answersTo(leader, 7)).toHaveLength(1);
    expect(c.answersTo(leader, 7)[0]?.type).toBe('result');
  });

  it('that keeps speaking has its messages dropped and is told at most once a second', () => {
    const c = new RoutedRaftCluster([1, 2, 3, 4]);
    const leader = c.leader();
    const gone = ([1, 2, 3, 4] as const).find((id) => id !== leader) as NodeId;
    remove(c, leader, gone);
    c.crash(gone); // its messages are played by hand below
    c.run(c.now + 1000);
    const peer = [1, 2, 3, 4].find((id) => id !== leader && id !== gone) as NodeId;
    const toGone = () =>
      c.node(peer).said.sent.filter((m) => m.to === gone && m.msg.type === 'removed').length;
    const before = toGone();
    const vote = {
      type: 'requestVote',
      term: 99,
      lastLogIndex: 0,
      lastLogTerm: 0,
      preVote: false,
      transfer: false,
    } as const;
    c.inject(peer, gone, vote);
    c.run(c.now + 1);
    c.inject(peer, gone, vote);
    c.run(c.now + 1);
    expect(toGone()).toBe(before + 1);
    expect(c.router(peer).replica.status().term).toBeLessThan(99); // dropped unread
    c.run(c.now + 1000);
    c.inject(peer, gone, vote);
    c.run(c.now + 1);
    expect(toGone()).toBe(before + 2);
  });

  it('is told by the peers it speaks to when it was down as it was removed', () => {
    const c = new RoutedRaftCluster([1, 2, 3, 4]);
    const leader = c.leader();
    const gone = ([1, 2, 3, 4] as const).find((id) => id !== leader) as NodeId;
    c.crash(gone);
    remove(c, leader, gone);
    c.boot(gone);
    c.run(c.now + 2000);
    const told = removedNotices(c, gone);
    expect(told).toHaveLength(1);
    expect(told[0]?.toldBy).not.toBe(gone);
  });

  it('is a learner that was down: it probes its peers when it hears from no leader, and is told', () => {
    const c = new RoutedRaftCluster([1, 2, 3, 4], {}, [4]);
    const leader = c.leader();
    c.crash(4);
    remove(c, leader, 4);
    c.boot(4);
    c.run(c.now + 3000);
    expect(removedNotices(c, 4)).toEqual([]); // one check without a leader is not enough
    c.run(c.now + 4000);
    const probes = c.node(4).said.sent.filter((m) => m.msg.type === 'probe');
    expect(new Set(probes.map((p) => p.to))).toEqual(new Set([1, 2, 3]));
    expect(removedNotices(c, 4)).toHaveLength(1);
  });

  it('is the leader itself: it finds out from its own log and the others go on', () => {
    const c = new RoutedRaftCluster([1, 2, 3]);
    const leader = c.leader();
    remove(c, leader, leader);
    expect(removedNotices(c, leader)).toEqual([{ type: 'removedFromCluster', toldBy: leader }]);
    c.crash(leader);
    const others = [1, 2, 3].filter((id) => id !== leader);
    const next = new RoutedRaftClusterView(c, others).leader();
    expect(others).toContain(next);
  });

  it('is not dialed by a cluster that restarts: replaying the removal tells nobody', () => {
    const c = new RoutedRaftCluster([1, 2, 3, 4]);
    const leader = c.leader();
    const gone = ([1, 2, 3, 4] as const).find((id) => id !== leader) as NodeId;
    remove(c, leader, gone);
    c.crash(gone);
    const others = [1, 2, 3, 4].filter((id) => id !== gone);
    for (const id of others) c.crash(id);
    const sentBefore = new Map(others.map((id) => [id, c.node(id).said.sent.length]));
    for (const id of others) c.boot(id);
    c.run(c.now + 2000);
    for (const id of others) {
      const after = c.node(id).said.sent.slice(sentBefore.get(id));
      expect(after.filter((m) => m.to === gone)).toEqual([]);
      expect(c.notices(id)).toContainEqual({ type: 'peerRemoved', id: gone, told: false });
    }
  });
});

/** A leader among some nodes of a cluster whose other nodes are down. */
class RoutedRaftClusterView {
  constructor(
    private readonly c: RoutedRaftCluster,
    private readonly live: readonly NodeId[],
  ) {}

  leader(withinMs = 5000): NodeId {
    const until = this.c.now + withinMs;
    while (this.c.now < until) {
      this.c.run(this.c.now + 10);
      for (const id of this.live) {
        if (this.c.router(id).replica.status().role === 'leader') return id;
      }
    }
    throw new Error('no leader among the live nodes');
  }
}

describe('a leader whose proposal of a write came back unknown, and that then stepped down', () => {
  it('answers "outcome unknown" for it, never "not leader" (which promises nothing applied)', () => {
    const c = new RoutedRaftCluster([1, 2, 3]);
    const old = c.leader();
    c.isolate(old);
    // As a forwarded call is served: on this node, no second hop.
    const write = call(1, { f: 'put', key: 'k', value: 'maybe' }, { session: 5, seq: 1 });
    c.request(old, 7, { ...write, forward: false, timeoutMs: 5000 });
    // Check-quorum deposes it; it hears the new leader before its patience for one runs out.
    const until = c.now + 2000;
    while (c.router(old).replica.status().role === 'leader' && c.now < until) c.run(c.now + 5);
    expect(c.router(old).replica.status().role).not.toBe('leader');
    expect(c.answersTo(old, 7)).toEqual([]);
    c.heal();
    c.run(c.now + 400);
    expect(c.router(old).leader()).not.toBe(old);
    expect(c.answersTo(old, 7)).toEqual([
      { type: 'refused', refusal: expect.objectContaining({ type: 'outcomeUnknown' }) },
    ]);
  });
});

describe('leases on routed nodes (the leader’s lessor)', () => {
  const keepAlive = (id: number, lease: number) =>
    call(id, { f: 'leaseKeepAlive', id: lease }, { kind: 'read' });
  const leasesOf = (c: RoutedRaftCluster, id: NodeId) =>
    c.router(id).replica.machine.read({ f: 'leaseLeases' });

  it('keeps a lease alive through followers and a leader crash, then revokes it a TTL after the last keep-alive', () => {
    const c = new RoutedRaftCluster([1, 2, 3]);
    const leader = c.leader();
    const [f1, f2] = [1, 2, 3].filter((id) => id !== leader) as [NodeId, NodeId];
    c.request(f1, 1, call(1, { f: 'leaseGrant', id: 0, ttl: 1 }));
    c.request(f1, 2, call(2, { f: 'put', key: 'held', value: 'v', lease: 1 }));
    c.run(c.now + 100);
    expect(c.answersTo(f1, 1)).toEqual([
      { type: 'result', result: expect.objectContaining({ f: 'leaseGrant', id: 1, ttl: 1 }) },
    ]);
    // A follower forwards keep-alives to the leader, whose lessor answers them.
    let client = 10;
    let lastSent = 0;
    const keep = (at: NodeId, untilAt: number) => {
      while (c.now < untilAt) {
        lastSent = c.now;
        c.request(at, ++client, keepAlive(client, 1));
        c.run(c.now + 300);
        expect(c.answersTo(at, client)).toEqual([
          { type: 'result', result: expect.objectContaining({ f: 'leaseKeepAlive', ttl: 1 }) },
        ]);
      }
    };
    keep(f1, c.now + 2000);
    expect(c.router(leader).leaseRemainingMs(1)).toBeGreaterThan(500);
    expect(c.router(f1).leaseRemainingMs(1)).toBeUndefined();
    c.crash(leader);
    const next = c.leader();
    expect(next).not.toBe(leader);
    // The new leader restarted the countdown at its full TTL when it took over.
    keep(f2 === next ? f1 : f2, c.now + 2000);
    expect(leasesOf(c, next)).toMatchObject({ leases: [1] });
    c.run(lastSent + 950);
    expect(leasesOf(c, next)).toMatchObject({ leases: [1] });
    c.run(lastSent + 1300);
    expect(leasesOf(c, next)).toMatchObject({ leases: [] });
    expect(c.router(next).replica.machine.read({ f: 'get', key: 'held' })).toMatchObject({
      entry: null,
    });
    // Told it is gone (etcd's TTL 0), not renewed.
    c.request(next, 99, keepAlive(99, 1));
    c.run(c.now + 100);
    expect(c.answersTo(next, 99)).toEqual([
      { type: 'result', result: expect.objectContaining({ f: 'error', code: 'leaseNotFound' }) },
    ]);
  });
});
