import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeId } from './ids.ts';
import {
  committedIndex,
  ExplicitQuorum,
  fastPaxosQuorumSizes,
  jointCommittedIndex,
  majority,
  quorumsIntersect,
  quorumsIntersectByEnumeration,
  ThresholdQuorum,
  voteResult,
} from './quorum.ts';

const ids = (n: number): NodeId[] => Array.from({ length: n }, (_, i) => i + 1);

describe('majority', () => {
  it('is floor(n/2)+1', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(majority)).toEqual([1, 2, 2, 3, 3, 4, 4]);
    expect(() => majority(0)).toThrow();
  });
});

describe('committedIndex', () => {
  const naive = (voters: NodeId[], acked: Map<NodeId, number>) => {
    // The largest index i such that a majority acknowledged at least i.
    let best = 0;
    for (const v of voters) {
      const i = acked.get(v) ?? 0;
      const count = voters.filter((w) => (acked.get(w) ?? 0) >= i).length;
      if (count >= majority(voters.length) && i > best) best = i;
    }
    return best;
  };

  it('agrees with the naive definition', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { minLength: 1, maxLength: 9 }), (indexes) => {
        const voters = ids(indexes.length);
        const acked = new Map(voters.map((v, i) => [v, indexes[i] as number]));
        return committedIndex(voters, (id) => acked.get(id) ?? 0) === naive(voters, acked);
      }),
    );
  });

  it('takes the minimum of both halves of a joint configuration', () => {
    const acked = new Map([
      [1, 10],
      [2, 10],
      [3, 1],
      [4, 2],
      [5, 3],
    ]);
    const get = (id: NodeId) => acked.get(id) ?? 0;
    expect(committedIndex([1, 2, 3], get)).toBe(10);
    expect(committedIndex([3, 4, 5], get)).toBe(2);
    expect(jointCommittedIndex([1, 2, 3], [3, 4, 5], get)).toBe(2);
    expect(committedIndex([], get)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('voteResult', () => {
  it('is won, lost or pending as a naive count says', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), {
          minLength: 1,
          maxLength: 9,
        }),
        (raw) => {
          const voters = ids(raw.length);
          const votes = new Map<NodeId, boolean>();
          raw.forEach((v, i) => {
            if (v !== undefined) votes.set(i + 1, v);
          });
          const yes = raw.filter((v) => v === true).length;
          const undecided = raw.filter((v) => v === undefined).length;
          const q = majority(raw.length);
          const expected = yes >= q ? 'won' : yes + undecided < q ? 'lost' : 'pending';
          return voteResult(voters, votes) === expected;
        },
      ),
    );
  });
});

describe('quorum systems', () => {
  it('threshold counting agrees with enumeration', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 7 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.array(fc.integer({ min: 1, max: n }), { minLength: 1, maxLength: 3 }),
            ),
          ),
        ([n, sizes]) => {
          const systems = sizes.map((s) => new ThresholdQuorum(ids(n), s));
          return quorumsIntersect(systems) === quorumsIntersectByEnumeration(systems);
        },
      ),
    );
  });

  it('majorities intersect pairwise; minorities do not', () => {
    const m = ThresholdQuorum.majorityOf(ids(5));
    expect(quorumsIntersect([m, m])).toBe(true);
    const half = new ThresholdQuorum(ids(4), 2);
    expect(quorumsIntersect([half, half])).toBe(false);
  });

  it('gives Fast Paxos sizes that satisfy both intersection requirements, and no smaller fast size does', () => {
    for (let n = 1; n <= 9; n++) {
      const { classic, fast } = fastPaxosQuorumSizes(n);
      const c = new ThresholdQuorum(ids(n), classic);
      const f = new ThresholdQuorum(ids(n), fast);
      expect(quorumsIntersectByEnumeration([c, c])).toBe(true);
      expect(quorumsIntersectByEnumeration([c, f, f])).toBe(true);
      if (fast > 1) {
        const smaller = new ThresholdQuorum(ids(n), fast - 1);
        expect(quorumsIntersectByEnumeration([c, smaller, smaller])).toBe(false);
      }
    }
    expect(fastPaxosQuorumSizes(5)).toEqual({ classic: 3, fast: 4 });
  });

  it('checks explicit systems, such as a grid, by enumeration', () => {
    // 2x2 grid: a quorum is a row plus a column.
    const grid = new ExplicitQuorum(ids(4), [
      [1, 2, 3],
      [1, 2, 4],
      [3, 4, 1],
      [3, 4, 2],
    ]);
    expect(quorumsIntersect([grid, grid])).toBe(true);
    const disjoint = new ExplicitQuorum(ids(4), [
      [1, 2],
      [3, 4],
    ]);
    expect(quorumsIntersect([disjoint, disjoint])).toBe(false);
    expect(grid.isQuorum([1, 2, 4])).toBe(true);
    expect(grid.isQuorum([1, 2])).toBe(false);
    expect(() => new ExplicitQuorum(ids(3), [[1, 9]])).toThrow(/non-member/);
  });
});
