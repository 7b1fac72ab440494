import { assert, unreachable } from '../../kernel/assert.ts';
import { compareProposalIds, maxProposalId, ZERO_PROPOSAL_ID } from '../ballot.ts';
import type { MultiDurable, MultiPersist } from './types.ts';

export function initialMultiDurable<C, S>(): MultiDurable<C, S> {
  return {
    promised: ZERO_PROPOSAL_ID,
    lastProposalId: ZERO_PROPOSAL_ID,
    accepted: new Map(),
    chosen: new Map(),
    snapshot: null,
  };
}

/**
 * The meaning of one Multi-Paxos persist item (copy-on-write, so a simulated disk can keep
 * old states; a real WAL folds the same items into mutable tables). Any prefix of a batch
 * is safe to restart from.
 */
export function applyMultiPersist<C, S>(
  d: MultiDurable<C, S>,
  item: MultiPersist<C, S>,
): MultiDurable<C, S> {
  switch (item.type) {
    case 'promise':
      assert(compareProposalIds(item.ballot, d.promised) >= 0, 'a durable promise never decreases');
      return { ...d, promised: item.ballot };
    case 'accept': {
      if (d.snapshot !== null && item.instance <= d.snapshot.upTo) return d;
      const accepted = new Map(d.accepted);
      accepted.set(item.instance, { ballot: item.ballot, value: item.value });
      return { ...d, promised: maxProposalId(d.promised, item.ballot), accepted };
    }
    case 'proposalId':
      assert(compareProposalIds(item.id, d.lastProposalId) > 0, 'a proposal id is used once');
      return { ...d, lastProposalId: item.id };
    case 'chosen': {
      if (d.snapshot !== null && item.instance <= d.snapshot.upTo) return d;
      const chosen = new Map(d.chosen);
      chosen.set(item.instance, item.value);
      return { ...d, chosen };
    }
    case 'snapshot': {
      if (d.snapshot !== null && d.snapshot.upTo >= item.upTo) return d;
      const keep = <T>(m: ReadonlyMap<number, T>) =>
        new Map([...m].filter(([instance]) => instance > item.upTo));
      return {
        ...d,
        accepted: keep(d.accepted),
        chosen: keep(d.chosen),
        snapshot: { upTo: item.upTo, data: item.data },
      };
    }
    default:
      return unreachable(item, 'multi persist item');
  }
}
