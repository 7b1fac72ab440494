import { describe, expect, it } from 'vitest';
import { Playground } from '../../sim/interactive.ts';
import { raftPlayground } from './raft.ts';

describe('Playground with Raft', () => {
  it('elects one leader within a few election timeouts (paper section 5.2)', () => {
    const pg = new Playground(raftPlayground, { seed: 3, nodes: 5 });
    pg.runUntil(1500);
    const leaders = pg.nodes().filter((n) => n.view.role === 'leader');
    expect(leaders).toHaveLength(1);
    const term = leaders[0]!.view.term;
    for (const n of pg.nodes()) expect(n.view.term).toBe(term);
  });

  it('commits a client request on every node, then elects a new leader in a higher term after the leader crashes', () => {
    const pg = new Playground(raftPlayground, { seed: 9, nodes: 5 });
    pg.runUntil(1500);
    const [leader] = pg.nodes().filter((n) => n.view.role === 'leader');
    expect(leader).toBeDefined();
    const id = pg.clientRequest('x=1');
    pg.runUntil(pg.now + 500);
    pg.refreshRequests();
    const req = pg.requests().find((r) => r.id === id)!;
    expect(req.phase).toBe('committed');
    for (const n of pg.nodes()) {
      expect(n.view.commit).toBeGreaterThanOrEqual(req.index);
      expect(n.view.log.some((c) => c.index === req.index && c.label === 'x=1')).toBe(true);
    }
    pg.crash(leader!.id);
    pg.runUntil(pg.now + 2000);
    const next = pg.nodes().filter((n) => n.up && n.view.role === 'leader');
    expect(next).toHaveLength(1);
    expect(next[0]!.id).not.toBe(leader!.id);
    expect(next[0]!.view.term).toBeGreaterThan(leader!.view.term);
  });

  it('is deterministic: the same seed gives the same picture', () => {
    const picture = (seed: number) => {
      const pg = new Playground(raftPlayground, { seed, nodes: 3, lossRate: 0.1 });
      pg.runUntil(800);
      pg.clientRequest('a');
      pg.runUntil(1600);
      return JSON.stringify({ nodes: pg.nodes(), flights: pg.flights(), captions: pg.captions() });
    };
    expect(picture(5)).toBe(picture(5));
    expect(picture(5)).not.toBe(picture(6));
  });

  it('keeps a minority partition from electing while the majority side keeps a leader', () => {
    const pg = new Playground(raftPlayground, { seed: 4, nodes: 5 });
    pg.runUntil(1500);
    pg.partition([[1, 2]]);
    pg.runUntil(pg.now + 3000);
    const leaders = pg.nodes().filter((n) => n.view.role === 'leader');
    expect(leaders).toHaveLength(1);
    expect([3, 4, 5]).toContain(leaders[0]!.id);
  });
});
