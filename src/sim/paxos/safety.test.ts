import { describe, expect, it } from 'vitest';
import { ThresholdQuorum } from '../../kernel/quorum.ts';
import { type ProposalId, ZERO_PROPOSAL_ID } from '../../paxos/ballot.ts';
import { proposalIdOrder } from '../../paxos/invariants.ts';
import { type BatchEvidence, type Commitment, PaxosSafety } from './safety.ts';

const b = (round: number, node: number): ProposalId => ({ round, node });

function checker(proposed: readonly string[] = ['x', 'y']) {
  const safety = new PaxosSafety<ProposalId, string>({
    order: proposalIdOrder,
    quorumFor: () => ThresholdQuorum.majorityOf([1, 2, 3]),
    valueKey: (v) => v,
    wasProposed: (v, seen) => seen.has(v),
  });
  const feed = (node: number, batch: Partial<BatchEvidence<ProposalId, string>>) =>
    safety.observe(node, {
      batches: [{ commitments: [], view: undefined, learned: [], ...batch }],
      proposed: node === 1 ? proposed : [],
    });
  return { safety, feed };
}

const accept = (ballot: ProposalId, value: string): Commitment<ProposalId, string> => ({
  kind: 'accept',
  instance: 0,
  ballot,
  value,
});

describe('Paxos safety over committed batches (Paxos Made Simple, 2.2)', () => {
  it('counts a value chosen once a quorum accepted it in one ballot, and lets learners learn it', () => {
    const { safety, feed } = checker();
    expect(feed(1, { commitments: [accept(b(1, 1), 'x')] })).toBeUndefined();
    expect(safety.chosenKey(0)).toBeUndefined();
    expect(feed(2, { commitments: [accept(b(1, 1), 'x')], learned: [[0, 'x']] })).toBeUndefined();
    expect(safety.chosenKey(0)).toBe('x');
  });

  it('flags an acceptance below a promise committed in an earlier batch', () => {
    const { feed } = checker();
    expect(feed(1, { commitments: [{ kind: 'promise', ballot: b(5, 2) }] })).toBeUndefined();
    expect(feed(1, { commitments: [accept(b(4, 3), 'x')] })).toMatch(
      /promise broken: acceptor 1 accepted in instance 0 4.3 after promising 5.2/,
    );
  });

  it('flags a promise that went back (an acceptor that forgot it across a crash)', () => {
    const { feed } = checker();
    feed(1, { view: { promised: b(5, 2), accepted: [] } });
    expect(feed(1, { view: { promised: ZERO_PROPOSAL_ID, accepted: [] } })).toMatch(
      /promise went back from 5.2 to 0.0/,
    );
  });

  it('does not re-check an old acceptance that is still in the view after a higher promise', () => {
    const { feed } = checker();
    const old = { instance: 0, ballot: b(1, 1), value: 'x' };
    expect(feed(1, { view: { promised: b(1, 1), accepted: [old] } })).toBeUndefined();
    expect(feed(1, { view: { promised: b(9, 2), accepted: [old] } })).toBeUndefined();
    expect(feed(1, { view: { promised: b(9, 2), accepted: [old] } })).toBeUndefined();
  });

  it('flags two values chosen in one instance, and a learner of a value no quorum accepted', () => {
    const { feed } = checker();
    feed(1, { commitments: [accept(b(1, 1), 'x')] });
    feed(2, { commitments: [accept(b(1, 1), 'x')] });
    feed(3, { commitments: [accept(b(2, 3), 'y')] });
    expect(feed(2, { commitments: [accept(b(2, 3), 'y')] })).toMatch(
      /two values chosen in instance 0: x \(ballot 1.1\) and y \(ballot 2.3\)/,
    );
    const fresh = checker();
    expect(fresh.feed(3, { learned: [[0, 'y']] })).toMatch(
      /learned y in instance 0, which no quorum/,
    );
  });

  it('flags a chosen value that no client proposed', () => {
    const { feed } = checker(['x']);
    feed(1, { commitments: [accept(b(1, 1), 'z')] });
    expect(feed(2, { commitments: [accept(b(1, 1), 'z')] })).toMatch(/never proposed: z/);
  });
});
