import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { captureOutput } from '../../cli/testing/capture-output.ts';
import { genericFaults } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { gossipSimProtocol } from './plugin.ts';

/**
 * The gossip acceptance sweeps. n = 5 through the CLI exactly as `quorate sim gossip
 * --nodes 5 --seeds 300 --faults all` (every generic fault plus leave and late rejoin);
 * n = 50 with a shorter faulty phase (8 s instead of 20) so 300 seeds stay cheap, once on a
 * healthy network (a live node declared dead is then a violation) and once with every
 * fault. Each run also holds every view to the truth within 30 s of healing.
 * `npm run soak:gossip` runs 10,000 seeds.
 */
const output = captureOutput();

const short = gossipSimProtocol({
  name: 'gossip',
  description: 'gossip, 8 s faulty phase',
  workload: { safetyMs: 8_000, publishWindowMs: 6_000 },
});

function sweep(faults: string[]): { failed: string[]; falseDead: number } {
  const failed: string[] = [];
  let falseDead = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const r = runSimulation(short, { seed, nodes: 50, ops: 20, faults });
    if (r.verdict !== 'pass') failed.push(`seed ${seed}: ${r.message}`);
    falseDead += short.lastMonitor()!.falseDead;
  }
  return { failed, falseDead };
}

describe('quorate sim gossip, 300 seeds each', () => {
  it('n = 5, every fault, through the CLI', async () => {
    const args = ['gossip', '--nodes', '5', '--seeds', '300', '--faults', 'all'];
    const code = await main(['node', 'quorate', 'sim', ...args]);
    expect(output.text()).toContain('gossip: 300 seeds from 1: 300 passed, 0 failed');
    expect(code).toBe(0);
  }, 300_000);

  it('n = 50, healthy network: no false dead verdict, every view converged', () => {
    const r = sweep([]);
    expect(r.failed).toEqual([]);
    expect(r.falseDead).toBe(0);
  }, 300_000);

  it('n = 50, every fault', () => {
    expect(sweep([...genericFaults, 'leave']).failed).toEqual([]);
  }, 400_000);
});
