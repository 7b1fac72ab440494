import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { captureOutput } from '../../cli/testing/capture-output.ts';
import { findProtocol } from '../protocols.ts';
import { runSimulation } from '../run.ts';
import { parseReplay } from '../testing/replay.ts';

/**
 * Each deliberately broken anti-entropy variant must be caught by the sweep (every fault)
 * within 300 seeds, and the one-line command it prints must reproduce the violation when
 * run through the CLI (the variants are registered protocols for that reason).
 */
const output = captureOutput();

const variants: [string, RegExp][] = [
  ['scuttlebutt-broken-gap', /^gap: /],
  ['scuttlebutt-broken-reuse', /version (went back|reused)/],
  ['merkle-broken-collect', /deleted key reappeared/],
];

describe('the anti-entropy sweeps catch each broken variant', () => {
  for (const [name, expected] of variants) {
    it(name, async () => {
      const protocol = findProtocol(name)!;
      const faults = protocol.faults?.map((f) => f.name) ?? [];
      let caught: ReturnType<typeof runSimulation> | undefined;
      for (let seed = 1; seed <= 300 && caught === undefined; seed++) {
        const r = runSimulation(protocol, {
          seed,
          faults: [
            'partition',
            'cut',
            'clog',
            'crash',
            'pause',
            'loss',
            'dup',
            'reorder',
            'skew',
            ...faults,
          ],
        });
        if (r.verdict !== 'pass') caught = r;
      }
      expect(caught, 'no violation in 300 seeds').toBeDefined();
      expect(caught!.message).toMatch(expected);
      const again = runSimulation(protocol, parseReplay(caught!.replay));
      expect([again.verdict, again.message]).toEqual(['violation', caught!.message]);
      // The printed command itself, through the CLI.
      const args = caught!.replay.replace(/^npx quorate /, '').split(' ');
      const code = await main(['node', 'quorate', ...args]);
      expect(code).toBe(1);
      expect(output.text()).toContain(caught!.message);
    });
  }
});
