import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { captureOutput } from '../../cli/testing/capture-output.ts';

/**
 * The acceptance sweeps of Totem (issue 15): `quorate sim totem --seeds 300 --faults all`
 * at 3 and 5 nodes must pass every check after every step, and re-form one ring of all nodes
 * after healing. `npm run soak:totem` runs 10,000 seeds.
 */
const output = captureOutput();

describe('quorate sim totem, 300 seeds under every fault', () => {
  for (const nodes of ['3', '5']) {
    it(`${nodes} nodes pass`, async () => {
      const args = ['totem', '--nodes', nodes, '--seeds', '300', '--faults', 'all'];
      const code = await main(['node', 'quorate', 'sim', ...args]);
      expect(output.text()).toContain('totem: 300 seeds from 1: 300 passed, 0 failed');
      expect(code).toBe(0);
    }, 240_000);
  }
});
