import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import type { RaftOptions } from './config.ts';
import { Network } from './testing.ts';
import type { RaftMsg } from './types.ts';

// Commit hints (CommitHintMsg): a follower that forwarded a client's write learns that the
// entry committed from one message of the leader, sent once the quorum counting the
// follower forms, instead of waiting for its own ack to reach the leader and an answer back.

const net3 = (raft: Partial<RaftOptions<string>> = {}) =>
  new Network<string>({ ids: [1, 2, 3], raft: { commitNoticeDelayMs: 10, ...raft } });

function proposeFrom(net: Network<string>, origin: NodeId, data: string): number {
  const reply = net.request(1, { type: 'propose', id: net.requestId(), data, origin });
  expect(reply[0]?.type).toBe('accepted');
  return reply[0]?.type === 'accepted' ? reply[0].index : -1;
}

/**
 * Node 2 holds one entry of leader 1's term t that nobody else got and that is not
 * committed; everything else in flight is dropped.
 */
function followerWithUncommittedEntry() {
  const net = net3({ commitHints: 'all' });
  net.elect(1);
  net.stabilize();
  const t = net.core(1).status().term;
  net.propose(1, 'x');
  net.flush(1);
  net.deliver((e) => e.to === 2 && e.msg.type === 'append');
  net.drop();
  const follower = net.core(2);
  const k = follower.status().lastIndex;
  const commit = follower.status().commit;
  expect(commit).toBeLessThan(k);
  return { net, follower, t, k, commit };
}

const hintsTo = (net: Network<string>, to: NodeId): RaftMsg<string>[] =>
  net.inFlight.filter((e) => e.to === to && e.msg.type === 'commitHint').map((e) => e.msg);

describe('commit hints', () => {
  it('let the forwarding follower commit and apply before any ack reaches the leader', () => {
    const net = net3();
    net.elect(1);
    const index = proposeFrom(net, 2, 'x');
    net.flush(1); // appends out; the leader's own write is durable, so it hints node 2
    expect(hintsTo(net, 2)).toEqual([
      { type: 'commitHint', term: net.core(1).status().term, index },
    ]);
    expect(hintsTo(net, 3)).toEqual([]);
    net.deliver((e) => e.to === 2);
    expect(net.core(2).status().commit).toBe(index);
    expect(net.appliedData(2)).toEqual(['x']);
    // The leader itself has not heard an ack yet.
    expect(net.core(1).status().commit).toBeLessThan(index);
    net.stabilize();
    expect(net.core(1).status().commit).toBe(index);
  });

  it('make the leader’s reads wait for what it hinted, as a follower may have answered it', () => {
    const net = net3();
    net.elect(1);
    const index = proposeFrom(net, 2, 'x');
    net.flush(1);
    net.deliver((e) => e.to === 2 && e.from === 1);
    expect(net.appliedData(2)).toEqual(['x']); // its client may have its answer now
    net.drop((e) => e.to === 1); // the acks that would tell the leader are late
    expect(net.core(1).status().commit).toBeLessThan(index);
    const [answer] = net.request(1, { type: 'read', id: net.requestId() });
    expect(answer).toBeUndefined(); // waits for a heartbeat round
    net.stabilize();
    const ready = net
      .node(1)
      .replies.map((r) => r.reply)
      .find((r) => r.type === 'readReady');
    expect(ready?.type === 'readReady' && ready.index).toBeGreaterThanOrEqual(index);
  });

  it('spare the hinted follower the commit notice it no longer needs', () => {
    const net = net3();
    net.elect(1);
    net.elapse(1); // the new leader's first heartbeats
    net.stabilize();
    const index = proposeFrom(net, 2, 'x');
    net.stabilize();
    expect(net.core(1).status().commit).toBe(index);
    expect(net.core(2).status().commit).toBe(index);
    net.elapse(10); // the held-back notices are due
    net.flush(1);
    const notices = net.inFlight
      .filter((e) => e.msg.type === 'heartbeat' && e.msg.round === 0)
      .map((e) => e.to);
    expect(notices).toEqual([3]);
    net.stabilize();
    expect(net.core(3).status().commit).toBe(index);
  });

  it('go once per index, and stop once the entry commits', () => {
    const net = net3();
    net.elect(1);
    const index = proposeFrom(net, 2, 'x');
    net.flush(1);
    net.flush(1);
    expect(hintsTo(net, 2)).toHaveLength(1);
    net.deliver((e) => e.to === 3);
    net.deliver((e) => e.to === 1);
    expect(net.core(1).status().commit).toBe(index);
    net.drop();
    const next = proposeFrom(net, 2, 'y');
    net.flush(1);
    expect(hintsTo(net, 2).map((m) => m.type === 'commitHint' && m.index)).toEqual([next]);
  });

  it('wait for the follower’s own write: a hint alone commits nothing it does not hold', () => {
    const net = net3();
    net.elect(1);
    const index = proposeFrom(net, 2, 'x');
    net.flush(1);
    const follower = net.core(2);
    const append = net.inFlight.find((e) => e.to === 2 && e.msg.type === 'append');
    const hint = net.inFlight.find((e) => e.to === 2 && e.msg.type === 'commitHint');
    if (append === undefined || hint === undefined)
      throw new Error('expected an append and a hint');
    follower.receive(net.now, 1, append.msg);
    const writing = follower.ready(); // its write is out, not yet durable
    follower.receive(net.now, 1, hint.msg);
    expect(follower.status().commit).toBeLessThan(index);
    expect(writing?.deliver.map((d) => d.kind === 'entry' && d.entry.index)).not.toContain(index);
    follower.advance(); // durable now
    expect(follower.status().commit).toBe(index);
    expect(follower.ready()?.deliver.map((d) => d.kind === 'entry' && d.entry.index)).toEqual([
      index,
    ]);
  });

  it('commit nothing when the follower’s matching entries end in an older term', () => {
    // Figure 8: an entry of an earlier term on a quorum is not committed by counting. Node 2
    // holds an uncommitted entry of term t; a leader of term t+1 confirms node 2 matches it
    // there, then hints an index of its own term that node 2 does not hold yet.
    const { net, follower, t, k, commit: commitBefore } = followerWithUncommittedEntry();
    follower.receive(net.now, 1, {
      type: 'append',
      term: t + 1,
      prevIndex: k,
      prevTerm: t,
      entries: [],
      commit: commitBefore,
    });
    net.flush(2);
    follower.receive(net.now, 1, { type: 'commitHint', term: t + 1, index: k + 1 });
    net.flush(2);
    expect(follower.status().commit).toBe(commitBefore);
  });

  it('go nowhere with hints off, and only to the origin by default', () => {
    const off = net3({ commitHints: 'off' });
    off.elect(1);
    proposeFrom(off, 2, 'x');
    off.flush(1);
    expect(hintsTo(off, 2)).toEqual([]);
    off.stabilize();
    expect(off.appliedData(1)).toEqual(['x']);

    const all = net3({ commitHints: 'all' });
    all.elect(1);
    all.propose(1, 'y');
    all.flush(1);
    expect(hintsTo(all, 2)).toHaveLength(1);
    expect(hintsTo(all, 3)).toHaveLength(1);
  });

  it('are forgotten with the leader: a new leader must first show where logs match', () => {
    const { net, follower, t, k, commit } = followerWithUncommittedEntry();
    // Node 3 leads term t+1 (as far as node 2 can tell) and hints k without any append.
    follower.receive(net.now, 3, { type: 'heartbeat', term: t + 1, commit: 0, round: 0 });
    follower.receive(net.now, 3, { type: 'commitHint', term: t + 1, index: k });
    net.flush(2);
    expect(follower.status().commit).toBe(commit);
    // The deposed leader's hint is stale: answered so that it steps down, and ignored.
    follower.receive(net.now, 1, { type: 'commitHint', term: t, index: k });
    const rd = follower.ready();
    expect(rd?.messages.map((m) => [m.to, m.msg.type])).toEqual([[1, 'heartbeatReply']]);
    expect(follower.status().commit).toBe(commit);
  });
});
