import { describe, expect, it } from 'vitest';
import type { TotemUnsafeTestingFaults } from '../../totem/node.ts';
import { genericFaults } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { parseReplay } from '../testing/replay.ts';
import { totemSimProtocol } from './plugin.ts';

/**
 * Each deliberately broken Totem variant must be caught by a sweep under every fault within
 * 300 seeds, and the replay command it prints must reproduce the same violation.
 */
const seedsMax = 300;

const variants: [string, RegExp, TotemUnsafeTestingFaults][] = [
  ['delivering across a gap', /gap|prefix/, { deliverAcrossGap: true }],
  ['freeing a datagram one rotation early', /freed .* lacks/, { freeOneRotationEarly: true }],
  ['skipping Recovery', /EVS broken|safe .* lacks|prefix/, { skipRecovery: true }],
];

describe('the sweep catches each deliberately broken Totem variant', () => {
  for (const [name, expected, faults] of variants) {
    for (const nodes of [3, 5]) {
      it(`${name} (${nodes} nodes)`, () => {
        const protocol = totemSimProtocol({ name: 'totem', description: 'broken', faults });
        let caught: ReturnType<typeof runSimulation> | undefined;
        for (let seed = 1; seed <= seedsMax && caught === undefined; seed++) {
          const r = runSimulation(protocol, { seed, nodes, faults: [...genericFaults] });
          if (r.verdict === 'violation') caught = r;
          else expect({ seed, verdict: r.verdict }).toEqual({ seed, verdict: 'pass' });
        }
        expect(caught, `no violation in ${seedsMax} seeds`).toBeDefined();
        expect(caught!.message).toMatch(expected);
        const again = runSimulation(protocol, parseReplay(caught!.replay));
        expect([again.verdict, again.message]).toEqual(['violation', caught!.message]);
      });
    }
  }
});
