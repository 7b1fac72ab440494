import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareProposalIds, nextProposalId, type ProposalId, ZERO_PROPOSAL_ID } from './ballot.ts';

const arbId = fc.record({
  round: fc.integer({ min: 0, max: 2 ** 45 }),
  node: fc.integer({ min: 1, max: 0xffff_ffff }),
});

describe('ProposalId', () => {
  it('orders by round, then node, as a total order', () => {
    fc.assert(
      fc.property(arbId, arbId, (a, b) => {
        const ab = compareProposalIds(a, b);
        expect(Math.sign(ab)).toBe(-Math.sign(compareProposalIds(b, a)));
        expect(ab === 0).toBe(a.round === b.round && a.node === b.node);
        if (a.round !== b.round) expect(ab < 0).toBe(a.round < b.round);
      }),
    );
  });

  it('next id exceeds the persisted last id and every id seen, whatever the clock says', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffff_ffff }),
        fc.integer({ min: -1_000_000, max: 2 ** 45 }),
        arbId,
        arbId,
        (node, now, lastUsed, seen) => {
          const id = nextProposalId(node, now, lastUsed, seen);
          expect(id.node).toBe(node);
          expect(compareProposalIds(id, lastUsed)).toBeGreaterThan(0);
          expect(compareProposalIds(id, seen)).toBeGreaterThan(0);
        },
      ),
    );
  });

  it('ids of two nodes never collide even with the same clock', () => {
    const a = nextProposalId(1, 500, ZERO_PROPOSAL_ID, ZERO_PROPOSAL_ID);
    const b = nextProposalId(2, 500, ZERO_PROPOSAL_ID, ZERO_PROPOSAL_ID);
    expect(compareProposalIds(a, b)).not.toBe(0);
  });

  it('refuses a round past 2^53 rather than wrap', () => {
    const huge: ProposalId = { round: Number.MAX_SAFE_INTEGER, node: 1 };
    expect(() => nextProposalId(1, 0, huge, ZERO_PROPOSAL_ID)).toThrow(/2\^53/);
  });
});
