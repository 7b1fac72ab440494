import { describe, expect, it } from 'vitest';
import { ThresholdQuorum } from '../kernel/quorum.ts';
import type { ProposalId } from './ballot.ts';
import {
  checkAtMostOneChosen,
  checkLearnersAgree,
  checkPromiseKept,
  chosenValues,
  proposalIdOrder,
  SafetyMonitor,
} from './invariants.ts';

const id = (round: number, node: number): ProposalId => ({ round, node });
const key = (v: string) => v;
const majority = ThresholdQuorum.majorityOf([1, 2, 3]);

describe('safety checks', () => {
  it('flag a promise that went back and an acceptance below the earlier promise', () => {
    const before = { promised: id(5, 1), accepted: [] };
    expect(
      checkPromiseKept(1, before, { promised: id(5, 1), accepted: [] }, proposalIdOrder, key),
    ).toEqual([]);
    expect(
      checkPromiseKept(1, before, { promised: id(4, 1), accepted: [] }, proposalIdOrder, key),
    ).toHaveLength(1);
    const below = { promised: id(5, 1), accepted: [{ instance: 0, ballot: id(3, 2), value: 'x' }] };
    expect(checkPromiseKept(1, before, below, proposalIdOrder, key)[0]?.type).toBe('promiseBroken');
  });

  it('count a value chosen only with a quorum on one ballot, and flag two chosen values', () => {
    const acc = [
      { acceptor: 1, instance: 0, ballot: id(1, 1), value: 'a' },
      { acceptor: 2, instance: 0, ballot: id(1, 1), value: 'a' },
      { acceptor: 3, instance: 0, ballot: id(2, 3), value: 'b' },
      { acceptor: 2, instance: 0, ballot: id(2, 3), value: 'b' },
    ];
    const chosen = chosenValues(acc, () => majority, proposalIdOrder, key);
    expect(chosen.map((c) => c.value).sort()).toEqual(['a', 'b']);
    expect(checkAtMostOneChosen(chosen)[0]?.type).toBe('twoValuesChosen');
    expect(chosenValues(acc.slice(1, 3), () => majority, proposalIdOrder, key)).toEqual([]);
  });

  it('flag a learner whose value differs from the chosen one or was never chosen', () => {
    const chosen = [{ instance: 0, ballot: '1.1', value: 'a' }];
    const learned = new Map([
      [1, new Map([[0, 'a']])],
      [2, new Map([[0, 'b']])],
      [3, new Map([[1, 'c']])],
    ]);
    expect(checkLearnersAgree(learned, chosen).map((v) => v.type)).toEqual([
      'learnersDisagree',
      'learnedNotChosen',
    ]);
  });

  it('the monitor remembers chosen values after acceptors move on', () => {
    const monitor = new SafetyMonitor<ProposalId, string>({
      order: proposalIdOrder,
      quorumFor: () => majority,
      wasProposed: (_i, v) => v !== '"forged"',
    });
    monitor.observeAcceptor(1, {
      promised: id(1, 1),
      accepted: [{ instance: 0, ballot: id(1, 1), value: 'a' }],
    });
    monitor.observeAcceptor(2, {
      promised: id(1, 1),
      accepted: [{ instance: 0, ballot: id(1, 1), value: 'a' }],
    });
    expect(monitor.chosenValue(0)).toBe('"a"');
    monitor.observeAcceptor(1, {
      promised: id(2, 3),
      accepted: [{ instance: 0, ballot: id(2, 3), value: 'forged' }],
    });
    monitor.observeAcceptor(3, {
      promised: id(2, 3),
      accepted: [{ instance: 0, ballot: id(2, 3), value: 'forged' }],
    });
    expect(monitor.violations.map((v) => v.type)).toEqual(['twoValuesChosen', 'chosenNotProposed']);
    monitor.observeLearner(2, [[0, 'a']]);
    monitor.observeLearner(2, [[0, 'forged']]);
    expect(monitor.violations.map((v) => v.type)).toContain('learnersDisagree');
  });
});
