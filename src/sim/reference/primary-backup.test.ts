import { describe, expect, it } from 'vitest';
import { runSimulation } from '../run.ts';
import { primaryBackup } from './plugin.ts';

describe('primary-backup fixture under the simulator', () => {
  it('is linearizable without faults, seed after seed', () => {
    for (let seed = 1; seed <= 15; seed++) {
      const r = runSimulation(primaryBackup, { seed, faults: [], ops: 150 });
      expect(r.verdict, `seed ${seed}: ${r.message}`).toBe('pass');
      expect(r.message).toMatch(/^linearizable: \d+ operations over 3 keys/);
      expect(r.history.filter((e) => e.type === 'invoke').length).toBe(150 + 5); // + final reads
    }
  });

  it('is caught losing writes or reading stale values under partitions, with a replay', () => {
    const caught: number[] = [];
    for (let seed = 1; seed <= 10 && caught.length < 3; seed++) {
      const r = runSimulation(primaryBackup, { seed, faults: ['partition'] });
      if (r.verdict === 'violation') {
        expect(r.message).toMatch(/not linearizable on key/);
        expect(r.replay).toBe(
          `npx quorate sim primary-backup --nodes 3 --seed ${seed} --ops 200 --clients 5 --faults partition`,
        );
        caught.push(seed);
      }
    }
    expect(caught.length).toBe(3);
    // Replaying the reported seed finds the same violation again.
    const again = runSimulation(primaryBackup, { seed: caught[0]!, faults: ['partition'] });
    const first = runSimulation(primaryBackup, { seed: caught[0]!, faults: ['partition'] });
    expect(again.message).toBe(first.message);
  });

  it('splits its brain in a scripted partition of the primary, and heals into lost writes', () => {
    const isolatePrimary = [
      { atMs: 200, action: { type: 'partition', groups: [[1], [2, 3]] } },
      { atMs: 700, action: { type: 'heal' } },
    ] as const;
    const r = runSimulation(primaryBackup, { seed: 1, scenario: isolatePrimary, ops: 150 });
    expect(r.verdict).toBe('violation');
    expect(r.message).toMatch(/not linearizable/);
    expect(r.replay).toMatch(/--faults none \(plus the scripted scenario\)$/);
    // The same script without the partition is linearizable.
    const calm = runSimulation(primaryBackup, { seed: 1, scenario: [], ops: 150 });
    expect(calm.verdict).toBe('pass');
  });

  it('writes the same trace for the same seed, and another for another seed', () => {
    const trace = (seed: number) => {
      const lines: string[] = [];
      runSimulation(primaryBackup, {
        seed,
        faults: ['partition', 'crash', 'loss', 'dup', 'skew'],
        ops: 80,
        trace: (l) => lines.push(l),
      });
      return lines.join('\n');
    };
    const a = trace(42);
    expect(trace(42)).toBe(a);
    expect(trace(43)).not.toBe(a);
    for (const type of [
      'start',
      'send',
      'deliver',
      'persist',
      'apply',
      'event',
      'fault',
      'history',
      'phase',
    ]) {
      expect(a, type).toContain(`"type":"${type}"`);
    }
  });
});
