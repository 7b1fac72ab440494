import { describe, expect, it } from 'vitest';
import { type NodeState, Playground } from '../../sim/interactive.ts';
import { multiPaxosPlayground } from './multi-paxos.ts';

const leaderOf = (nodes: readonly NodeState[]) =>
  nodes.find((n) => n.up && n.view.role === 'leader');
/** The value each live node has chosen at `instance`, undefined where not chosen yet. */
const chosenAt = (nodes: readonly NodeState[], instance: number) =>
  nodes
    .filter((n) => n.up)
    .map((n) =>
      n.view.commit >= instance ? n.view.log.find((c) => c.index === instance)?.label : undefined,
    );

describe('Playground with Multi-Paxos', () => {
  it('elects a leader, chooses client commands on every node, and a new leader continues the log', () => {
    const pg = new Playground(multiPaxosPlayground, { seed: 4, nodes: 5 });
    pg.runUntil(1500);
    const first = leaderOf(pg.nodes());
    expect(first).toBeDefined();
    expect(pg.nodes().filter((n) => n.view.role === 'leader')).toHaveLength(1);
    pg.clientRequest('x=1');
    pg.runUntil(pg.now + 300);
    pg.refreshRequests();
    expect(pg.requests()[0]?.phase).toBe('committed');
    expect(chosenAt(pg.nodes(), 1)).toEqual(['x=1', 'x=1', 'x=1', 'x=1', 'x=1']);

    pg.crash(first!.id);
    pg.runUntil(pg.now + 2000);
    const second = leaderOf(pg.nodes());
    expect(second).toBeDefined();
    expect(second!.id).not.toBe(first!.id);
    expect(second!.view.term).toBeGreaterThan(first!.view.term);
    pg.clientRequest('x=2');
    pg.runUntil(pg.now + 300);
    pg.refreshRequests();
    expect(pg.requests()[1]?.phase).toBe('committed');
    expect(chosenAt(pg.nodes(), 1)).toEqual(['x=1', 'x=1', 'x=1', 'x=1']);
    expect(chosenAt(pg.nodes(), 2)).toEqual(['x=2', 'x=2', 'x=2', 'x=2']);
  });

  it('a new leader finishes an instance its crashed predecessor left half-done', () => {
    const pg = new Playground(multiPaxosPlayground, { seed: 9, nodes: 5 });
    pg.runUntil(1500);
    const first = leaderOf(pg.nodes())!;
    pg.clientRequest('y=7');
    // Crash the leader the moment two followers accepted #1, before it heard their answers:
    // chosen (3 of 5 hold it) but nobody knows it yet.
    const acceptedBy = () =>
      pg.nodes().filter((n) => n.id !== first.id && n.view.log.some((c) => c.index === 1)).length;
    while (acceptedBy() < 2) expect(pg.step()).toBe(true);
    expect(pg.node(first.id).view.commit).toBe(0);
    pg.crash(first.id);
    pg.runUntil(pg.now + 2000);
    expect(pg.captions().some((c) => c.text.includes('re-proposes 1 half-done instance'))).toBe(
      true,
    );
    expect(chosenAt(pg.nodes(), 1)).toEqual(['y=7', 'y=7', 'y=7', 'y=7']);
  });
});
