import { describe, expect, it } from 'vitest';
import { REPLICA_DEFAULTS } from '../../totem/replica.ts';
import { genericFaults } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { parseReplay } from '../testing/replay.ts';
import { type TotemKvSimSettings, totemKvSimProtocol } from './kv.ts';

/**
 * Totem as a replicated KV state machine: each deliberately broken variant must be caught by
 * the linearizability check within 300 seeds under every fault, and replay from its seed.
 * Agreed delivery alone is not among them: the answer's wait for two more token visits
 * covers it (300 seeds pass), and answering at apply with safe delivery passes 300 seeds
 * too (its window, a crash of every other member between receipt and delivery, is rare);
 * together they lose acknowledged writes within a few seeds.
 */
const seedsMax = 300;

const variants: [string, Omit<TotemKvSimSettings, 'name' | 'description'>][] = [
  ['a minority component accepting writes and reads', { faults: { minorityIsPrimary: true } }],
  [
    'agreed (not safe) commands, answered once applied here',
    { replica: { ...REPLICA_DEFAULTS, mode: 'agreed' }, faults: { answerAtApply: true } },
  ],
];

describe('the KV sweep catches each deliberately broken Totem replica', () => {
  for (const [name, settings] of variants) {
    it(name, () => {
      const protocol = totemKvSimProtocol({ name: 'totem-kv', description: 'broken', ...settings });
      let caught: ReturnType<typeof runSimulation> | undefined;
      for (let seed = 1; seed <= seedsMax && caught === undefined; seed++) {
        const r = runSimulation(protocol, { seed, nodes: 3, faults: [...genericFaults] });
        if (r.verdict === 'violation') caught = r;
      }
      expect(caught, `no violation in ${seedsMax} seeds`).toBeDefined();
      expect(caught!.message).toMatch(/not linearizable/);
      const again = runSimulation(protocol, parseReplay(caught!.replay));
      expect([again.verdict, again.message]).toEqual(['violation', caught!.message]);
    }, 240_000);
  }
});
