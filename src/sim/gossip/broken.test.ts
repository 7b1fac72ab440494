import { describe, expect, it } from 'vitest';
import type { GossipUnsafeTestingFaults } from '../../gossip/config.ts';
import { genericFaults } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { parseReplay } from '../testing/replay.ts';
import { gossipSimProtocol } from './plugin.ts';

/**
 * Deliberately broken gossip cores: the sweep must catch each within 300 seeds, and the
 * replay command it prints must reproduce the same violation.
 */
const variants: [string, RegExp, GossipUnsafeTestingFaults][] = [
  ['an incarnation not kept across restarts', /incarnation went back/, { forgetIncarnation: true }],
  ['a member that never refutes', /not converged|declared dead/, { noRefutation: true }],
  [
    'rumours retransmitted without limit',
    /retransmit limit broken/,
    { unboundedRetransmits: true },
  ],
];

describe('the gossip sweep catches each broken variant', () => {
  for (const [name, expected, faults] of variants) {
    it(name, () => {
      const protocol = gossipSimProtocol({ name: 'gossip', description: 'broken', faults });
      let caught: ReturnType<typeof runSimulation> | undefined;
      for (let seed = 1; seed <= 300 && caught === undefined; seed++) {
        const r = runSimulation(protocol, { seed, nodes: 5, faults: [...genericFaults, 'leave'] });
        if (r.verdict !== 'pass') caught = r;
      }
      expect(caught, 'no violation in 300 seeds').toBeDefined();
      expect(caught!.message).toMatch(expected);
      const again = runSimulation(protocol, parseReplay(caught!.replay));
      expect([again.verdict, again.message]).toEqual(['violation', caught!.message]);
    });
  }

  it('the correct core passes the seeds that caught them', () => {
    const protocol = gossipSimProtocol({ name: 'gossip', description: 'correct' });
    for (let seed = 1; seed <= 3; seed++) {
      const r = runSimulation(protocol, { seed, nodes: 5, faults: [...genericFaults, 'leave'] });
      expect([seed, r.verdict]).toEqual([seed, 'pass']);
    }
  });
});
