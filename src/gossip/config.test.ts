import { describe, expect, it } from 'vitest';
import {
  awarenessScaledMs,
  digestMismatchMs,
  GOSSIP_DEFAULTS,
  pushPullScaleMs,
  retransmitLimit,
  suspicionConfirmationsNeeded,
  suspicionMaxTimeoutMs,
  suspicionMinTimeoutMs,
  suspicionTimeoutMs,
} from './config.ts';

describe('gossip formulas (memberlist LAN defaults)', () => {
  it('retransmit limit is 4·⌈log10(n+1)⌉', () => {
    expect([1, 9, 10, 50, 99, 1_000, 10_000].map((n) => retransmitLimit(4, n))).toEqual([
      4, 4, 8, 8, 8, 16, 20,
    ]);
  });

  it('suspicion runs from 4·max(1, log10 n) probe intervals up to 6x, shrinking with confirmations (Lifeguard 4.2)', () => {
    const min = suspicionMinTimeoutMs(4, 50, 1_000);
    expect(min).toBeCloseTo(4 * Math.log10(50) * 1_000);
    expect(suspicionMinTimeoutMs(4, 5, 1_000)).toBe(4_000);
    const max = suspicionMaxTimeoutMs(min, 6);
    const k = suspicionConfirmationsNeeded(4, 50);
    expect(k).toBe(2);
    const t = [0, 1, 2, 3].map((c) => suspicionTimeoutMs(c, k, min, max));
    expect(t[0]).toBe(Math.floor(max));
    expect(t[1]!).toBeLessThan(t[0]!);
    expect(t[2]).toBe(Math.max(min, t[2]!));
    expect(t[2]!).toBeLessThanOrEqual(Math.ceil(min));
    expect(t[3]).toBeGreaterThanOrEqual(min);
    expect(suspicionConfirmationsNeeded(4, 2)).toBe(0);
  });

  it('health stretches timeouts linearly, push-pull slows past 32 members, a mismatch lasts a rumour lifetime', () => {
    expect(awarenessScaledMs(500, 0)).toBe(500);
    expect(awarenessScaledMs(500, 7)).toBe(4_000);
    expect(pushPullScaleMs(30_000, 32)).toBe(30_000);
    expect(pushPullScaleMs(30_000, 64)).toBe(60_000);
    expect(pushPullScaleMs(30_000, 10_000)).toBe(30_000 * 10);
    expect(digestMismatchMs(3, 8, 3, 200)).toBe(1_800);
  });

  it('defaults are memberlist LAN profile values', () => {
    const d = GOSSIP_DEFAULTS;
    expect([
      d.probeIntervalMs,
      d.probeTimeoutMs,
      d.indirectChecks,
      d.gossipIntervalMs,
      d.gossipNodes,
    ]).toEqual([1_000, 500, 3, 200, 3]);
    expect([d.retransmitMult, d.suspicionMult, d.suspicionMaxTimeoutMult, d.awarenessMax]).toEqual([
      4, 4, 6, 8,
    ]);
    expect([
      d.packetBytesMax,
      d.membersMax,
      d.tagsBytesMax,
      d.eventBytesMax,
      d.eventsRetainedMax,
    ]).toEqual([1_400, 10_000, 512, 1_024, 4_096]);
  });
});
