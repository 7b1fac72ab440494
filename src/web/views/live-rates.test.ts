import { describe, expect, it } from 'vitest';
import { commitRates } from './live-rates.ts';

const [n1, n2, n3] = [1, 2, 3];

describe('commitRates', () => {
  it("gives each node's rate and the cluster's as the fastest member's, not their sum", () => {
    const r = commitRates(
      [
        { id: n1, at: 1000, commits: 100 },
        { id: n2, at: 1000, commits: 90 },
        { id: n3, at: 1000, commits: 100 },
      ],
      [
        { id: n1, at: 3000, commits: 300 },
        { id: n2, at: 3000, commits: 250 },
        { id: n3, at: 3000, commits: 300 },
      ],
    );
    expect([...r.perNode]).toEqual([
      [n1, 100],
      [n2, 80],
      [n3, 100],
    ]);
    expect(r.cluster).toBe(100);
  });

  it('has no rate for a node that is new, down, or restarted, and 0 for the cluster with none', () => {
    const r = commitRates(
      [
        { id: n1, at: 0, commits: 50 },
        { id: n2, at: 0, commits: null },
      ],
      [
        { id: n1, at: 1000, commits: 3 },
        { id: n2, at: 1000, commits: 10 },
        { id: n3, at: 1000, commits: 10 },
      ],
    );
    expect(r.perNode.size).toBe(0);
    expect(r.cluster).toBe(0);
  });
});
