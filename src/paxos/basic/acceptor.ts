import { compareProposalIds, type ProposalId } from '../ballot.ts';
import type { AcceptedProposal, BasicPersist } from './types.ts';

/**
 * Deliberately broken behaviours, for tests only: each exists to prove that the safety
 * checks in `../invariants.ts` catch the bug. Never set in production.
 */
export interface BasicUnsafeTestingFaults {
  /** The acceptor replies without persisting its promise/accept: a restart forgets them. */
  readonly skipPersistBeforeReply?: true;
  /** The acceptor accepts an Accept whose id is below its promise (breaks the promise). */
  readonly acceptBelowPromise?: true;
  /** The proposer ignores values reported in promises and always proposes its own. */
  readonly ignorePromisedValues?: true;
}

export type PrepareOutcome<V> =
  | { readonly type: 'promise'; readonly accepted: AcceptedProposal<V> | null }
  | { readonly type: 'nack'; readonly promised: ProposalId };

export type AcceptOutcome =
  | { readonly type: 'accepted' }
  | { readonly type: 'nack'; readonly promised: ProposalId };

/** Read-only view for invariant checks. */
export interface AcceptorView<V> {
  readonly promised: ProposalId;
  readonly accepted: AcceptedProposal<V> | null;
}

/**
 * The acceptor role (Paxos Made Simple, 2.2): answers a Prepare only above its promise, an
 * Accept only at or above it. It returns the persist item with each outcome; the node puts
 * both in one Ready batch, so the answer leaves only after the state it promises is durable.
 */
export class BasicAcceptor<V> {
  private promisedId: ProposalId;
  private acceptedProposal: AcceptedProposal<V> | null;

  constructor(
    durable: AcceptorView<V>,
    private readonly faults: BasicUnsafeTestingFaults = {},
  ) {
    this.promisedId = durable.promised;
    this.acceptedProposal = durable.accepted;
  }

  view(): AcceptorView<V> {
    return { promised: this.promisedId, accepted: this.acceptedProposal };
  }

  /** Phase 1b. An id equal to the promise is refused: only a strictly higher id is news. */
  prepare(id: ProposalId): { outcome: PrepareOutcome<V>; persist: BasicPersist<V> | null } {
    if (compareProposalIds(id, this.promisedId) <= 0) {
      return { outcome: { type: 'nack', promised: this.promisedId }, persist: null };
    }
    this.promisedId = id;
    return {
      outcome: { type: 'promise', accepted: this.acceptedProposal },
      persist: this.faults.skipPersistBeforeReply ? null : { type: 'promise', id },
    };
  }

  /** Phase 2b. Accepting raises the promise to `id` as well. */
  accept(id: ProposalId, value: V): { outcome: AcceptOutcome; persist: BasicPersist<V> | null } {
    const belowPromise = compareProposalIds(id, this.promisedId) < 0;
    if (belowPromise && !this.faults.acceptBelowPromise) {
      return { outcome: { type: 'nack', promised: this.promisedId }, persist: null };
    }
    if (!belowPromise) this.promisedId = id;
    this.acceptedProposal = { id, value };
    return {
      outcome: { type: 'accepted' },
      persist: this.faults.skipPersistBeforeReply ? null : { type: 'accept', id, value },
    };
  }
}
