import type { NodeId } from '../../kernel/ids.ts';
import {
  compareRounds,
  type FastQuorums,
  type FastRound,
  roundEquals,
  type Vote,
} from './round.ts';

/**
 * The Fast Paxos learner: a value is chosen when the acceptors whose latest vote is
 * (round, value) form a quorum of the round's kind, fast or classic. Memory: one vote per
 * acceptor.
 */
export class FastLearner<V> {
  private readonly latest = new Map<NodeId, Vote<V>>();
  private learnedValue: { readonly value: V } | null;

  constructor(
    private readonly quorums: FastQuorums,
    private readonly valueKey: (v: V) => string,
    learned: { readonly value: V } | null,
  ) {
    this.learnedValue = learned;
  }

  learned(): { readonly value: V } | null {
    return this.learnedValue;
  }

  /** Records a vote; returns the round in which it made the value chosen, if it did. */
  onVoted(from: NodeId, round: FastRound, value: V): FastRound | null {
    if (this.learnedValue !== null) return null;
    const previous = this.latest.get(from);
    if (previous !== undefined && compareRounds(previous.round, round) >= 0) return null;
    this.latest.set(from, { round, value });
    const key = this.valueKey(value);
    const voters: NodeId[] = [];
    for (const [acceptor, vote] of this.latest) {
      if (roundEquals(vote.round, round) && this.valueKey(vote.value) === key)
        voters.push(acceptor);
    }
    const quorum = round.fast ? this.quorums.fast : this.quorums.classic;
    if (!quorum.isQuorum(voters)) return null;
    this.learn(value);
    return round;
  }

  learn(value: V): boolean {
    if (this.learnedValue !== null) return false;
    this.learnedValue = { value };
    this.latest.clear();
    return true;
  }
}
