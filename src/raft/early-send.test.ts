import { describe, expect, it } from 'vitest';
import { makeConfig } from './membership.ts';
import { Network } from './testing.ts';
import type { RaftMsg } from './types.ts';

// The leader's appends leave before its own write is durable (Ready's `early`, dissertation
// 10.2.1). What that must not let out: entries of a term its disk does not hold yet, or a
// commit index covering entries its disk does not hold when it is the only voter.

const commitOf = (m: RaftMsg<string>): number | undefined =>
  m.type === 'append' || m.type === 'heartbeat' ? m.commit : undefined;

describe('a leader sending before its own write is durable', () => {
  it('sends appends early in a steady term, so its disk and its followers overlap', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    const core = net.core(1);
    core.request(net.now, 1, { type: 'propose', id: 1, data: 'x' });
    const rd = core.ready();
    expect(rd?.persist.map((p) => p.kind)).toEqual(['entries']);
    expect(rd?.early.map((m) => [m.to, m.msg.type])).toEqual([
      [2, 'append'],
      [3, 'append'],
    ]);
    expect(rd?.messages).toEqual([]);
  });

  it('holds a lone voter back until the term it just won is durable', () => {
    const net = new Network<string>({ ids: [1, 2], config: makeConfig([1], [2]) });
    const core = net.core(1);
    core.request(net.now, 1, { type: 'campaign', id: 1 });
    const rd = core.ready();
    expect(rd?.persist[0]).toMatchObject({ kind: 'hardState', state: { term: 1, vote: 1 } });
    expect(rd?.early).toEqual([]);
    expect(rd?.messages.map((m) => [m.to, m.msg.type])).toContainEqual([2, 'append']);
  });

  it('tells learners a lone voter commit only for entries its disk holds', () => {
    const net = new Network<string>({ ids: [1, 2], config: makeConfig([1], [2]) });
    net.elect(1);
    const core = net.core(1);
    const index = core.status().lastIndex + 1;
    core.request(net.now, 1, { type: 'propose', id: 1, data: 'x' });
    const writing = core.ready();
    expect(writing?.persist.map((p) => p.kind)).toEqual(['entries']);
    const sent = [...(writing?.early ?? []), ...(writing?.messages ?? [])].map((m) => m.msg);
    expect(sent.length).toBeGreaterThan(0);
    for (const m of sent) expect(commitOf(m) ?? 0).toBeLessThan(index);
    expect(writing?.deliver).toEqual([]);
    core.advance();
    const committed = core.ready();
    expect(committed?.deliver.map((d) => (d.kind === 'entry' ? d.entry.index : -1))).toEqual([
      index,
    ]);
  });
});

describe('commit notices held back (commitNoticeDelayMs)', () => {
  const heldBack = () => new Network<string>({ ids: [1, 2, 3], raft: { commitNoticeDelayMs: 10 } });

  it('tells idle followers the commit index once the delay has passed', () => {
    const net = heldBack();
    net.elect(1);
    net.propose(1, 'x');
    net.stabilize();
    const index = net.core(1).status().commit;
    expect(net.appliedData(1)).toEqual(['x']);
    expect(net.core(2).status().commit).toBeLessThan(index);
    expect(net.core(1).deadline()).toBeLessThanOrEqual(net.now + 10);
    net.elapse(10);
    net.stabilize();
    expect(net.core(2).status().commit).toBe(index);
    expect(net.appliedData(2)).toEqual(['x']);
  });

  it('carries the commit index on the next append instead when one comes first', () => {
    const net = heldBack();
    net.elect(1);
    net.propose(1, 'x');
    net.stabilize();
    const first = net.core(1).status().commit;
    net.propose(1, 'y');
    net.flush(1);
    const appends = net.inFlight.filter((e) => e.msg.type === 'append' && e.to === 2);
    expect(appends.map((e) => e.msg.type === 'append' && e.msg.commit)).toEqual([first]);
    net.stabilize();
    expect(net.appliedData(2)).toEqual(['x']);
  });
});
