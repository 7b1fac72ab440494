import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';

/**
 * The acceptance sweeps of the Paxos family: `quorate sim <p> --nodes 5 --seeds 300
 * --faults all` must pass for each protocol. `--seeds` without `--seed` starts at seed 1,
 * so the sweep is the same on every machine. `npm run soak:paxos` runs 10,000 seeds each.
 */
let out = '';

beforeEach(() => {
  out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('quorate sim, Paxos family, 300 seeds under every fault', () => {
  for (const protocol of ['paxos', 'fastpaxos', 'multipaxos']) {
    it(`${protocol} passes`, async () => {
      const args = [protocol, '--nodes', '5', '--seeds', '300', '--faults', 'all'];
      const code = await main(['node', 'quorate', 'sim', ...args]);
      expect(out).toContain(`${protocol}: 300 seeds from 1: 300 passed, 0 failed`);
      expect(code).toBe(0);
    }, 240_000);
  }
});
