import type { ScheduledAction } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { gossipSimProtocol } from './plugin.ts';

export interface LifeguardCounts {
  /** Dead verdicts, by anyone, about a node that was live (the slow one included). */
  readonly wrongDead: number;
  /** Of those, verdicts about the slow node itself. */
  readonly aboutSlow: number;
  readonly verdicts: number;
  /** Runs that did not pass their end check (views not converged after healing). */
  readonly failedRuns: number;
}

export interface LifeguardSettings {
  readonly seeds: number;
  readonly n: number;
  /** Mean processing delay of the starved node. */
  readonly slowMs: number;
  /** How long the node is starved, from `fromMs` (default 25 s from 5 s). */
  readonly slowForMs?: number;
  readonly fromMs?: number;
}

/**
 * The Lifeguard experiment: at n nodes on a healthy network, one node (a different one per
 * seed) is CPU-starved from `fromMs` for `slowForMs`, every input handled `slowMs` late on
 * average; count wrong dead verdicts with Lifeguard on and off, same seeds and schedule.
 */
export function lifeguardExperiment(s: LifeguardSettings): {
  on: LifeguardCounts;
  off: LifeguardCounts;
} {
  const fromMs = s.fromMs ?? 5_000;
  const forMs = s.slowForMs ?? 25_000;
  const run = (lifeguard: boolean): LifeguardCounts => {
    const p = gossipSimProtocol({
      name: 'gossip',
      description: `slow node, Lifeguard ${lifeguard ? 'on' : 'off'}`,
      config: { lifeguard },
      workload: { safetyMs: fromMs + forMs, publishWindowMs: fromMs + forMs - 1_000 },
    });
    let wrongDead = 0;
    let aboutSlow = 0;
    let verdicts = 0;
    let failedRuns = 0;
    for (let seed = 1; seed <= s.seeds; seed++) {
      const slow = 1 + (seed % s.n);
      const scenario: ScheduledAction[] = [
        { atMs: fromMs, action: { type: 'slow', node: slow, delayMs: s.slowMs } },
        { atMs: fromMs + forMs, action: { type: 'slow', node: slow, delayMs: 0 } },
      ];
      // A fault is named so the monitor counts wrong verdicts instead of failing the run.
      const r = runSimulation(p, { seed, nodes: s.n, ops: 20, faults: ['slow'], scenario });
      const m = p.lastMonitor()!;
      wrongDead += m.falseDead;
      aboutSlow += m.falseDeadAbout.get(slow) ?? 0;
      verdicts += m.verdicts;
      if (r.verdict !== 'pass') failedRuns++;
    }
    return { wrongDead, aboutSlow, verdicts, failedRuns };
  };
  return { on: run(true), off: run(false) };
}
