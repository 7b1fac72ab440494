import { describe, expect, it } from 'vitest';
import {
  consensusTimeoutMs,
  TOTEM_DEFAULTS,
  type TotemConfig,
  tokenHoldMs,
  tokenRetransmitMs,
  tokenTimeoutMs,
  validateTotemConfig,
} from './config.ts';

const base = (over: Partial<TotemConfig> = {}): TotemConfig => ({
  ...TOTEM_DEFAULTS,
  id: 1,
  members: [1, 2, 3],
  ...over,
});

describe('Totem timeouts (corosync defaults)', () => {
  it('token is 3,000 ms plus 650 ms per member above two', () => {
    expect(tokenTimeoutMs(base({ members: [1, 2] }))).toBe(3000);
    expect(tokenTimeoutMs(base())).toBe(3650);
    expect(tokenTimeoutMs(base({ members: [1, 2, 3, 4, 5] }))).toBe(4950);
  });

  it('retransmit is token / (4 + 0.2), hold 0.8 of that, consensus 1.2 x token', () => {
    const c = base({ members: [1, 2] });
    expect(tokenRetransmitMs(c)).toBeCloseTo(3000 / 4.2);
    expect(tokenHoldMs(c)).toBeCloseTo((0.8 * 3000) / 4.2);
    expect(consensusTimeoutMs(c)).toBeCloseTo(3600);
  });
});

describe('validateTotemConfig', () => {
  it('accepts the defaults', () => {
    expect(() => validateTotemConfig(base())).not.toThrow();
  });

  it.each([
    [{ consensusFactor: 0.00001 }, /consensus timeout .* must exceed the join timeout/],
    [{ tokenRetransmitsBeforeLoss: 0 }, /tokenRetransmitsBeforeLoss must be a positive integer/],
    [{ windowSize: 10, maxMessagesPerVisit: 17 }, /maxMessagesPerVisit must not exceed windowSize/],
    [{ members: [2, 3] }, /members must include this node/],
    [{ members: [1, 1, 2] }, /members must not repeat/],
    [{ sendQueueBytesMax: 10 }, /sendQueueBytesMax must hold at least one message/],
    [{ mtuBytes: 50 }, /mtuBytes must exceed/],
    [{ storeSpanMax: 10 }, /storeSpanMax must be at least 4 windows/],
  ] as const)('refuses %j with a clear error', (over, why) => {
    expect(() => validateTotemConfig(base(over as Partial<TotemConfig>))).toThrow(why);
  });
});
