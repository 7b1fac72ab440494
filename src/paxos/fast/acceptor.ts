import { compareRounds, type FastRound, roundEquals, type Vote } from './round.ts';
import type { FastPersist } from './types.ts';

/** Test-only broken behaviours that the safety checks must catch. Never set in production. */
export interface FastUnsafeTestingFaults {
  /** The acceptor replies and votes without persisting: a restart forgets its promise and vote. */
  readonly skipPersistBeforeReply?: true;
  /** Accept quorums that break Fast Paxos's intersection requirement instead of refusing them. */
  readonly skipQuorumValidation?: true;
}

export interface FastAcceptorView<V> {
  readonly promised: FastRound;
  readonly vote: Vote<V> | null;
}

/** An acceptor's answer and the write that must be durable before it. */
export interface AcceptorStep<O, V> {
  readonly outcome: O;
  readonly persist: FastPersist<V> | null;
}

export type FastPrepareOutcome<V> =
  | { readonly type: 'promise'; readonly vote: Vote<V> | null }
  | { readonly type: 'nack'; readonly promised: FastRound };

export type FastVoteOutcome<V> =
  | { readonly type: 'voted'; readonly vote: Vote<V> }
  /** Already voted in this round (one vote per round): repeat that vote. */
  | { readonly type: 'again'; readonly vote: Vote<V> }
  | { readonly type: 'nack'; readonly promised: FastRound };

/**
 * The Fast Paxos acceptor: state (rnd, vrnd, vval) of the paper, plus `anyRound`, the fast
 * round whose coordinator sent "any" (volatile: losing it only loses permission to vote).
 * It votes at most once per round — the property that lets a fast-round vote serve as a
 * phase-1b message for the round's recovery round.
 */
export class FastAcceptor<V> {
  private promisedRound: FastRound;
  private lastVote: Vote<V> | null;
  private anyRound: FastRound | null = null;

  constructor(
    durable: FastAcceptorView<V>,
    private readonly skipPersist: boolean,
  ) {
    this.promisedRound = durable.promised;
    this.lastVote = durable.vote;
  }

  view(): FastAcceptorView<V> {
    return { promised: this.promisedRound, vote: this.lastVote };
  }

  /** Whether a client value may be voted for now (an "any" for the joined round). */
  openForClients(): FastRound | null {
    const open = this.anyRound !== null && roundEquals(this.anyRound, this.promisedRound);
    return open && !this.votedIn(this.promisedRound) ? this.promisedRound : null;
  }

  prepare(round: FastRound): AcceptorStep<FastPrepareOutcome<V>, V> {
    if (compareRounds(round, this.promisedRound) <= 0) {
      return { outcome: { type: 'nack', promised: this.promisedRound }, persist: null };
    }
    this.promisedRound = round;
    return {
      outcome: { type: 'promise', vote: this.lastVote },
      persist: this.skipPersist ? null : { type: 'promise', round },
    };
  }

  /** Phase 2a "any": joins `round` without voting; returns the promise write if it rose. */
  any(round: FastRound): AcceptorStep<'open' | 'nack', V> {
    if (compareRounds(round, this.promisedRound) < 0 || this.votedIn(round)) {
      return { outcome: 'nack', persist: null };
    }
    const rose = compareRounds(round, this.promisedRound) > 0;
    this.promisedRound = round;
    this.anyRound = round;
    const persist: FastPersist<V> | null =
      rose && !this.skipPersist ? { type: 'promise', round } : null;
    return { outcome: 'open', persist };
  }

  /** A vote for `value` in `round` (phase 2a value, a client value after "any", or recovery). */
  vote(round: FastRound, value: V): AcceptorStep<FastVoteOutcome<V>, V> {
    if (compareRounds(round, this.promisedRound) < 0) {
      return { outcome: { type: 'nack', promised: this.promisedRound }, persist: null };
    }
    if (this.lastVote !== null && this.votedIn(round)) {
      return { outcome: { type: 'again', vote: this.lastVote }, persist: null };
    }
    this.promisedRound = round;
    this.lastVote = { round, value };
    return {
      outcome: { type: 'voted', vote: this.lastVote },
      persist: this.skipPersist ? null : { type: 'vote', round, value },
    };
  }

  private votedIn(round: FastRound): boolean {
    return this.lastVote !== null && roundEquals(this.lastVote.round, round);
  }
}
