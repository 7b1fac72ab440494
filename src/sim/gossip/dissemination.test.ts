import { describe, expect, it } from 'vitest';
import { Rng } from '../../kernel/rng.ts';
import { type Scheme, spread, theoryRounds } from './dissemination.ts';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

describe('dissemination model against theory', () => {
  const rounds = (scheme: Scheme, n: number, seeds: number) =>
    Array.from({ length: seeds }, (_, s) => spread(scheme, n, Rng.fromSeed(s + 1)).rounds);

  it('push takes about log2 n + ln n rounds (Pittel)', () => {
    const m = median(rounds('push', 1_000, 50));
    expect(Math.abs(m - theoryRounds('push', 1_000))).toBeLessThanOrEqual(2);
  });

  it('push-pull takes about log3 n + ln ln n rounds (Karp et al.)', () => {
    const m = median(rounds('push-pull', 1_000, 50));
    expect(Math.abs(m - theoryRounds('push-pull', 1_000))).toBeLessThanOrEqual(2);
  });

  it('rumour+digest reaches everyone; pull is slower to start than push-pull', () => {
    expect(Math.max(...rounds('rumour+digest', 1_000, 30))).toBeLessThan(60);
    expect(median(rounds('pull', 1_000, 30))).toBeGreaterThan(
      median(rounds('push-pull', 1_000, 30)),
    );
  });
});
