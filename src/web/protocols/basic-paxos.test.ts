import { describe, expect, it } from 'vitest';
import { Playground } from '../../sim/interactive.ts';
import { basicPaxosPlayground } from './basic-paxos.ts';

describe('Playground with Basic Paxos', () => {
  it('chooses one value that every node learns, even with two competing proposers', () => {
    const pg = new Playground(basicPaxosPlayground, { seed: 7, nodes: 5 });
    pg.clientRequest('red', 1);
    pg.clientRequest('blue', 5);
    pg.runUntil(3000);
    pg.refreshRequests();
    const nodes = pg.nodes();
    const values = new Set(nodes.map((n) => n.view.log[0]?.label));
    expect(nodes.every((n) => n.view.role === 'learned' && n.view.commit === 1)).toBe(true);
    expect(values.size).toBe(1);
    const chosen = [...values][0]!;
    expect(['red', 'blue']).toContain(chosen);
    for (const r of pg.requests()) {
      expect(r.phase).toBe('committed');
      expect(r.note).toBe(`chosen value: ${chosen}`);
    }
  });

  it('keeps the chosen value after the proposer crashes and a later proposal runs', () => {
    const pg = new Playground(basicPaxosPlayground, { seed: 2, nodes: 3 });
    pg.clientRequest('first', 1);
    pg.runUntil(1000);
    pg.crash(1);
    pg.clientRequest('second', 2);
    pg.runUntil(3000);
    const live = pg.nodes().filter((n) => n.up);
    expect(live.every((n) => n.view.log[0]?.label === 'first')).toBe(true);
    expect(pg.requests().at(-1)?.note).toBe('chosen value: first');
  });
});
