import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../kernel/ids.ts';
import type { ScheduledAction } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { lifeguardExperiment } from './lifeguard.ts';
import { gossipNodeOf } from './monitor.ts';
import { gossipSimProtocol } from './plugin.ts';

/** Suspicions raised by every node over a run at n = 10 where n2 is starved from 5 s to 30 s. */
function suspicionsWithSlow(delayMs: number, seed = 1) {
  const p = gossipSimProtocol({
    name: 'gossip',
    description: 'slow n2',
    workload: { safetyMs: 30_000, publishWindowMs: 29_000 },
  });
  const scenario: ScheduledAction[] =
    delayMs === 0 ? [] : [{ atMs: 5_000, action: { type: 'slow', node: 2, delayMs } }];
  const r = runSimulation(p, { seed, nodes: 10, ops: 20, faults: ['slow'], scenario });
  const view = p.lastMonitor()!.view;
  let suspicions = 0;
  for (const id of view.members as NodeId[]) suspicions += gossipNodeOf(view, id)!.stats.suspicions;
  return { verdict: r.verdict, message: r.message, suspicions, delivered: r.stats.delivered };
}

describe('the slow fault (a CPU-starved node)', () => {
  it('makes a node answer so late (1 s mean) that others suspect it; same seed, same run', () => {
    const slow = suspicionsWithSlow(1_000);
    expect(slow.verdict).toBe('pass');
    expect(slow.suspicions).toBeGreaterThan(0);
    expect(suspicionsWithSlow(1_000)).toEqual(slow);
    expect(suspicionsWithSlow(0).suspicions).toBe(0);
  }, 120_000);
});

/**
 * The goal, at a small size (n = 10, 5 seeds; `npm run bench:gossip-sim -- --only
 * lifeguard` runs n = 50 over 300 seeds): with one node starved by 300 ms on average, wrong
 * dead verdicts with Lifeguard on are at most 1/50 of those with it off. Measured, off
 * gives none at this delay (refutations beat even the shortest suspicion), so this only
 * fails if Lifeguard on kills a live node.
 */
describe('Lifeguard against a node slowed by 300 ms', () => {
  it('wrong dead verdicts with Lifeguard on <= 1/50 of those with it off', () => {
    const r = lifeguardExperiment({ seeds: 5, n: 10, slowMs: 300 });
    expect(r.on.failedRuns + r.off.failedRuns).toBe(0);
    expect(r.on.wrongDead * 50).toBeLessThanOrEqual(r.off.wrongDead);
  }, 300_000);
});
