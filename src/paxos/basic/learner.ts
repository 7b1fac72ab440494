import type { NodeId } from '../../kernel/ids.ts';
import type { QuorumSystem } from '../../kernel/quorum.ts';
import { compareProposalIds, type ProposalId, proposalIdEquals } from '../ballot.ts';
import type { AcceptedProposal } from './types.ts';

/**
 * The learner role: a value is chosen once a quorum of acceptors accepted the same proposal
 * id. Keeps only each acceptor's highest accepted proposal, so its memory is bounded by the
 * number of acceptors; a proposal that a quorum accepted but that some acceptor already
 * superseded is learned later from a higher id or a `decided` message.
 */
export class BasicLearner<V> {
  private readonly latest = new Map<NodeId, AcceptedProposal<V>>();
  private learnedValue: { readonly value: V } | null;

  constructor(
    private readonly acceptors: QuorumSystem,
    learned: { readonly value: V } | null,
  ) {
    this.learnedValue = learned;
  }

  learned(): { readonly value: V } | null {
    return this.learnedValue;
  }

  /** Records an Accepted; returns true when this makes the value learned. */
  onAccepted(from: NodeId, id: ProposalId, value: V): boolean {
    if (this.learnedValue !== null) return false;
    const previous = this.latest.get(from);
    if (previous !== undefined && compareProposalIds(previous.id, id) >= 0) return false;
    this.latest.set(from, { id, value });
    const voters: NodeId[] = [];
    for (const [acceptor, accepted] of this.latest) {
      if (proposalIdEquals(accepted.id, id)) voters.push(acceptor);
    }
    if (!this.acceptors.isQuorum(voters)) return false;
    this.learnedValue = { value };
    this.latest.clear();
    return true;
  }

  /** A peer that learned the value told us; returns true when it is news. */
  learn(value: V): boolean {
    if (this.learnedValue !== null) return false;
    this.learnedValue = { value };
    this.latest.clear();
    return true;
  }
}
