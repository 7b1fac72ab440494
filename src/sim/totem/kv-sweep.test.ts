import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { captureOutput } from '../../cli/testing/capture-output.ts';

/**
 * Totem as a replicated KV state machine (issue 15): `quorate sim totem --workload kv` with
 * 300 seeds under every fault must be linearizable at 3 and 5 nodes, with every ring check.
 */
const output = captureOutput();

describe('quorate sim totem --workload kv, 300 seeds under every fault', () => {
  for (const nodes of ['3', '5']) {
    it(`${nodes} nodes pass`, async () => {
      const args = ['totem', '--workload', 'kv', '--nodes', nodes, '--seeds', '300'];
      const code = await main(['node', 'quorate', 'sim', ...args, '--faults', 'all']);
      expect(output.text()).toContain('totem-kv: 300 seeds from 1: 300 passed, 0 failed');
      expect(code).toBe(0);
    }, 300_000);
  }
});
