import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import { GOSSIP_DEFAULTS, type GossipConfig, validateGossipConfig } from './config.ts';
import { GossipNode } from './node.ts';
import type { GossipMsg } from './types.ts';

const REAP = { reapDeadMs: 60_000, reapLeftMs: 90_000 } as const;

function node(id: NodeId, over: Partial<GossipConfig> = {}) {
  const config: GossipConfig = { ...GOSSIP_DEFAULTS, id, seeds: [], tags: '', ...REAP, ...over };
  return new GossipNode(config, Rng.fromSeed(id), undefined, 0);
}

function drain(n: GossipNode): void {
  for (let rd = n.ready(); rd !== undefined; rd = n.ready()) n.advance();
}

/** Ticks every 200 ms from `from` to `to` (the host would tick at least that often). */
function run(n: GossipNode, from: number, to: number): void {
  for (let t = from; t <= to; t += 200) {
    n.tick(t);
    drain(n);
  }
}

function pushPull(
  members: GossipMsg & { type: 'push-pull' } extends infer P
    ? P extends { members: infer M }
      ? M
      : never
    : never,
): GossipMsg {
  return { type: 'push-pull', reply: false, join: false, members, heads: [], events: [] };
}

/** Node 1 knowing 2 and 3 alive, then hearing 2 declared dead and 3 leaving at time 1 s. */
function withGone(over: Partial<GossipConfig> = {}) {
  const n = node(1, over);
  n.receive(
    0,
    2,
    pushPull([
      { id: 1, incarnation: 1, status: 'alive', tags: '' },
      { id: 2, incarnation: 1, status: 'alive', tags: '' },
      { id: 3, incarnation: 1, status: 'alive', tags: '' },
      { id: 4, incarnation: 1, status: 'alive', tags: '' },
    ]),
  );
  drain(n);
  n.receive(1_000, 4, {
    type: 'gossip',
    rumours: [
      { kind: 'dead', id: 2, incarnation: 1, from: 4 },
      { kind: 'leave', id: 3, incarnation: 1, ltime: 1 },
    ],
  });
  drain(n);
  return n;
}

describe('GossipNode: reaping dead and left members', () => {
  it('forgets a dead member after reapDeadMs and a left one after reapLeftMs, not before', () => {
    const n = withGone();
    run(n, 1_200, 60_000);
    expect(n.member(2)?.status).toBe('dead');
    run(n, 60_200, 62_200);
    expect(n.member(2)).toBeUndefined();
    expect(n.member(3)?.status).toBe('left');
    run(n, 62_400, 92_400);
    expect(n.member(3)).toBeUndefined();
    // Node 4 never answers a probe here, so it is found dead and reaped in its turn too.
    expect(n.stats.reaped).toBeGreaterThanOrEqual(2);
    // The hash of what remains is exact after the removals.
    expect(n.membershipHash).toBe(n.recomputeHash());
    expect(n.memberRecords().map((m) => m.id)).not.toContain(2);
  });

  it('refuses a stale alive and a peer record of a reaped member, but takes a real rejoin', () => {
    const n = withGone();
    run(n, 1_200, 62_200);
    expect(n.member(2)).toBeUndefined();
    // A late rumour of its old life, and a peer that has not reaped it yet.
    n.receive(62_300, 4, {
      type: 'gossip',
      rumours: [{ kind: 'alive', id: 2, incarnation: 1, tags: '' }],
    });
    n.receive(62_400, 4, pushPull([{ id: 2, incarnation: 1, status: 'dead', tags: '' }]));
    drain(n);
    expect(n.member(2)).toBeUndefined();
    // The member restarted above its old incarnation: that is news.
    n.receive(62_500, 4, {
      type: 'gossip',
      rumours: [{ kind: 'alive', id: 2, incarnation: 2, tags: '' }],
    });
    drain(n);
    expect(n.member(2)).toMatchObject({ status: 'alive', incarnation: 2 });
  });

  it('does not count the dead in the membership hash: a node that reaped and one that has not agree', () => {
    const reaper = withGone();
    const late = withGone();
    run(reaper, 1_200, 62_200);
    run(late, 1_200, 30_000);
    expect(reaper.member(2)).toBeUndefined();
    expect(late.member(2)?.status).toBe('dead');
    // 3 (left) is still held by both; 2 (dead) only by `late`.
    expect(reaper.membershipHash).toBe(late.membershipHash);
  });

  it('refuses reap intervals shorter than the news of the death or the leave needs', () => {
    const base = { ...GOSSIP_DEFAULTS, id: 1, seeds: [], tags: '' };
    expect(() => validateGossipConfig({ ...base, reapDeadMs: 1_000 })).toThrow(
      /reapDeadMs \(1000\) must be at least gossipToTheDeadMs/,
    );
    expect(() => validateGossipConfig({ ...base, reapLeftMs: 10 })).toThrow(
      /reapLeftMs \(10\) must be at least leaveGraceMs/,
    );
  });
});

describe('GossipNode: join while a member', () => {
  it('starts a state exchange with the new seed at once (two clusters merge)', () => {
    const n = node(1);
    drain(n);
    n.request(10, 7, { type: 'join', seeds: [5] });
    const sent: GossipMsg[] = [];
    for (let rd = n.ready(); rd !== undefined; rd = n.ready()) {
      for (const m of rd.messages) if (m.to === 5) sent.push(m.msg);
      n.advance();
    }
    expect(sent.map((m) => m.type)).toEqual(['push-pull']);
    expect(sent[0]).toMatchObject({ type: 'push-pull', join: true, reply: false });
  });
});
