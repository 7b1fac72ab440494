import { describe, expect, it } from 'vitest';
import { type NodeState, Playground } from '../../sim/interactive.ts';
import { collisionLags, fastPaxosPlayground } from './fast-paxos.ts';

/** Each node's learned value, undefined where it learned nothing. */
const learnedValues = (nodes: readonly NodeState[]) =>
  nodes.map((n) => (n.view.role === 'learned' ? n.view.log[0]?.label : undefined));

describe('Playground with Fast Paxos', () => {
  it('chooses a lone client value in the fast round, with no recovery', () => {
    const pg = new Playground(fastPaxosPlayground, { seed: 3, nodes: 5 });
    pg.runUntil(100); // n1 opens the fast round: Prepare, Promise, "any"
    expect(pg.nodes().every((n) => n.view.badge === 'r 1.1f')).toBe(true);
    pg.clientRequest('red');
    pg.runUntil(400);
    expect(new Set(pg.nodes().map((n) => n.view.log[0]?.label))).toEqual(new Set(['red']));
    expect(pg.nodes().every((n) => n.view.role === 'learned' && n.view.commit === 1)).toBe(true);
    // Chosen in the fast round itself: every vote is in round 1.1f, none in a recovery round.
    expect(pg.nodes().every((n) => n.view.badge === 'r 1.1f')).toBe(true);
    expect(pg.captions().some((c) => c.text.includes('collision'))).toBe(false);
    expect(pg.requests()[0]?.phase).toBe('committed');
    expect(pg.requests()[0]?.note).toBe('chosen value: red');
  });

  for (const nodes of [3, 5, 7]) {
    it(`turns two racing clients into a collision, recovers, and every learner agrees (${nodes} nodes)`, () => {
      const pg = new Playground(fastPaxosPlayground, { seed: 11, nodes });
      pg.runUntil(100);
      const lags = collisionLags(pg.members);
      pg.clientBroadcast('red', lags.first);
      pg.clientBroadcast('blue', lags.second);
      pg.runUntil(1000);
      expect(pg.captions().some((c) => c.text.includes('sees a collision in 1.1f'))).toBe(true);
      const chosen = learnedValues(pg.nodes());
      expect(chosen.every((v) => v !== undefined)).toBe(true);
      expect(new Set(chosen).size).toBe(1);
      // Recovered in the recovery round of 1.1f, a classic round (the "+r…c" badge).
      expect(pg.nodes().some((n) => n.view.badge === 'r 1.1+rc')).toBe(true);
      const winner = chosen[0]!;
      const notes = pg.requests().map((r) => r.note);
      expect(pg.requests().every((r) => r.phase === 'committed')).toBe(true);
      expect(notes.filter((n) => n === `chosen value: ${winner}`)).toHaveLength(1);
      expect(notes.filter((n) => n.includes('another client'))).toHaveLength(1);
    });
  }

  it('recovers after the initial coordinator crashes before any client spoke', () => {
    const pg = new Playground(fastPaxosPlayground, { seed: 5, nodes: 5 });
    pg.crash(1);
    pg.clientRequest('green');
    pg.runUntil(3000);
    const live = pg.nodes().filter((n) => n.up);
    expect(live.every((n) => n.view.role === 'learned' && n.view.log[0]?.label === 'green')).toBe(
      true,
    );
  });
});
