import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { captureOutput } from '../../cli/testing/capture-output.ts';
import { genericFaults } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { merkleSim } from './merkle.ts';
import { scuttlebuttSim } from './scuttlebutt.ts';

/**
 * The anti-entropy acceptance sweeps, 300 seeds each at 5 nodes with every fault (loss,
 * duplication, reordering, partitions, pauses, crash/restart with torn writes, skew, and
 * for Scuttlebutt churn). Every check runs after every step; after healing every live
 * replica must hold the same data within the stated 30 s bound, and the sweeps also hold
 * the measured time to it well inside that bound. `npm run soak:gossip` runs 10,000 seeds.
 */
const output = captureOutput();

function convergedAfterMs(message: string): number {
  const m = /same data (\d+) ms after healing/.exec(message);
  return m === null ? Number.POSITIVE_INFINITY : Number(m[1]);
}

describe('quorate sim scuttlebutt / merkle, 300 seeds each', () => {
  it('scuttlebutt, every fault and churn, through the CLI', async () => {
    const code = await main(['node', 'quorate', 'sim', 'scuttlebutt', '--seeds', '300']);
    expect(output.text()).toContain('scuttlebutt: 300 seeds from 1: 300 passed, 0 failed');
    expect(code).toBe(0);
  }, 120_000);

  it('merkle, every fault, through the CLI', async () => {
    const code = await main(['node', 'quorate', 'sim', 'merkle', '--seeds', '300']);
    expect(output.text()).toContain('merkle: 300 seeds from 1: 300 passed, 0 failed');
    expect(code).toBe(0);
  }, 120_000);

  it('both converge well inside the 30 s bound, and Merkle collects tombstones', () => {
    let worst = 0;
    let collected = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const s = runSimulation(scuttlebuttSim, { seed, faults: [...genericFaults, 'churn'] });
      const m = runSimulation(merkleSim, { seed, faults: [...genericFaults] });
      expect([seed, s.verdict, m.verdict]).toEqual([seed, 'pass', 'pass']);
      worst = Math.max(worst, convergedAfterMs(s.message), convergedAfterMs(m.message));
      collected += merkleSim.lastLedger()!.collected;
    }
    expect(worst).toBeLessThan(10_000);
    // The tombstone rule is exercised, not vacuous: replicas do forget deletes.
    expect(collected).toBeGreaterThan(0);
  }, 120_000);
});
