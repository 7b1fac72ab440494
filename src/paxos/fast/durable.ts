import { assert, unreachable } from '../../kernel/assert.ts';
import { compareProposalIds, ZERO_PROPOSAL_ID } from '../ballot.ts';
import { compareRounds, ZERO_ROUND } from './round.ts';
import type { FastDurable, FastPersist } from './types.ts';

export function initialFastDurable<V>(): FastDurable<V> {
  return { promised: ZERO_ROUND, vote: null, lastProposalId: ZERO_PROPOSAL_ID, learned: null };
}

/** The meaning of one Fast Paxos persist item; every prefix of a batch is safe to restart from. */
export function applyFastPersist<V>(d: FastDurable<V>, item: FastPersist<V>): FastDurable<V> {
  switch (item.type) {
    case 'promise':
      assert(compareRounds(item.round, d.promised) >= 0, 'a durable promise never decreases');
      return { ...d, promised: item.round };
    case 'vote': {
      const promised = compareRounds(item.round, d.promised) > 0 ? item.round : d.promised;
      return { ...d, promised, vote: { round: item.round, value: item.value } };
    }
    case 'proposalId':
      assert(compareProposalIds(item.id, d.lastProposalId) > 0, 'a proposal id is used once');
      return { ...d, lastProposalId: item.id };
    case 'learned':
      return d.learned === null ? { ...d, learned: { value: item.value } } : d;
    default:
      return unreachable(item, 'fast persist item');
  }
}
