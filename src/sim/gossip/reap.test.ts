import { describe, expect, it } from 'vitest';
import { genericFaults } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { gossipSimProtocol } from './plugin.ts';

/**
 * Reaping under the simulator: reap intervals cut to the shortest the config allows (dead
 * after gossipToTheDeadMs = 30 s, left after 10 s), so crashed and departed nodes are
 * forgotten inside a run, with every fault and late rejoins. Every check still holds after
 * every step, and after healing every live node's view is the truth: a reaped member is
 * never brought back by a stale record, and one that comes back at a higher incarnation is
 * taken back. A lone survivor, whose indirect probers all crashed, has its health at the
 * maximum (every probe misses its nacks) and probes 8x slower; with at most half the nodes
 * live the end check waits minorityConvergeMs (plugin.ts) instead of 30 s for it.
 */
const reaping = gossipSimProtocol({
  name: 'gossip',
  description: 'gossip, short reap intervals, 8 s faulty phase',
  config: { reapDeadMs: 30_000, reapLeftMs: 5_000 },
  workload: { safetyMs: 8_000, publishWindowMs: 6_000 },
});

describe('quorate sim gossip with reaping', () => {
  it('n = 50, every fault and leave, 100 seeds: all pass, and members are reaped', () => {
    const failed: string[] = [];
    let reaped = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const r = runSimulation(reaping, {
        seed,
        nodes: 5,
        ops: 20,
        faults: [...genericFaults, 'leave'],
      });
      if (r.verdict !== 'pass') failed.push(`seed ${seed}: ${r.message}`);
      reaped += reaping.lastMonitor()!.reaped;
    }
    expect(failed).toEqual([]);
    expect(reaped).toBeGreaterThan(0);
  }, 300_000);
});
