import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';

// The acceptance sweep, exactly as a user would type it: 300 seeds (1..300) of a
// 5-node Raft cluster under every fault the nemesis knows, each checked after every step
// and for linearizability at the end. `npm run soak:raft` runs 10,000.
describe('quorate sim raft --nodes 5 --seeds 300 --faults all', () => {
  it('passes every seed', async () => {
    const code = await main([
      'node',
      'quorate',
      'sim',
      'raft',
      '--nodes',
      '5',
      '--seeds',
      '300',
      '--faults',
      'all',
    ]);
    expect(code).toBe(0);
  }, 600_000);
});
