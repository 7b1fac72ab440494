import { assert, unreachable } from '../../kernel/assert.ts';
import { compareProposalIds, maxProposalId, ZERO_PROPOSAL_ID } from '../ballot.ts';
import type { BasicDurable, BasicPersist } from './types.ts';

export function initialBasicDurable<V>(): BasicDurable<V> {
  return {
    promised: ZERO_PROPOSAL_ID,
    accepted: null,
    lastProposalId: ZERO_PROPOSAL_ID,
    learned: null,
  };
}

/**
 * The meaning of one persist item: the simulator's disk and the real WAL both fold items
 * with this function, in order, so they agree on what survives a crash. Any prefix of a
 * batch is a state the core can restart from safely: an item never depends on a later one.
 */
export function applyBasicPersist<V>(d: BasicDurable<V>, item: BasicPersist<V>): BasicDurable<V> {
  switch (item.type) {
    case 'promise':
      assert(compareProposalIds(item.id, d.promised) >= 0, 'a durable promise never decreases');
      return { ...d, promised: item.id };
    case 'accept':
      // Accepting id n is also a promise of n (Paxos Made Simple, 2.2: accepting implies it).
      return {
        ...d,
        promised: maxProposalId(d.promised, item.id),
        accepted: { id: item.id, value: item.value },
      };
    case 'proposalId':
      assert(
        compareProposalIds(item.id, d.lastProposalId) > 0,
        'a proposer never persists an id it already used',
      );
      return { ...d, lastProposalId: item.id };
    case 'learned':
      return d.learned === null ? { ...d, learned: { value: item.value } } : d;
    default:
      return unreachable(item, 'basic persist item');
  }
}
