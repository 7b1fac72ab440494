import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { captureOutput } from '../../cli/testing/capture-output.ts';

/**
 * The acceptance sweeps of the Paxos family: `quorate sim <p> --nodes 5 --seeds 300
 * --faults all` must pass for each protocol. `--seeds` without `--seed` starts at seed 1,
 * so the sweep is the same on every machine. `npm run soak:paxos` runs 10,000 seeds each.
 */
const output = captureOutput();

describe('quorate sim, Paxos family, 300 seeds under every fault', () => {
  for (const protocol of ['paxos', 'fastpaxos', 'multipaxos']) {
    it(`${protocol} passes`, async () => {
      const args = [protocol, '--nodes', '5', '--seeds', '300', '--faults', 'all'];
      const code = await main(['node', 'quorate', 'sim', ...args]);
      expect(output.text()).toContain(`${protocol}: 300 seeds from 1: 300 passed, 0 failed`);
      expect(code).toBe(0);
    }, 240_000);
  }
});
