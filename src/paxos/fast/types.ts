import type { NodeId } from '../../kernel/ids.ts';
import type { ProposalId } from '../ballot.ts';
import type { FastRound, Vote } from './round.ts';

/** Fast Paxos messages (Lamport 2006, sections 2 and 3). Wire codes are append-only. */
export type FastMsg<V> =
  | { readonly type: 'prepare'; readonly round: FastRound }
  | { readonly type: 'promise'; readonly round: FastRound; readonly vote: Vote<V> | null }
  /** Phase 2a with a value (classic rounds, or a constrained fast round). */
  | { readonly type: 'accept'; readonly round: FastRound; readonly value: V }
  /** Phase 2a "any": acceptors may vote for the first client value they get in `round`. */
  | { readonly type: 'any'; readonly round: FastRound }
  /** Phase 2b, to every member: learners, the coordinator and (uncoordinated) acceptors. */
  | { readonly type: 'voted'; readonly round: FastRound; readonly value: V }
  | { readonly type: 'nack'; readonly round: FastRound; readonly promised: FastRound }
  | { readonly type: 'decided'; readonly value: V };

/** A client sends its value straight to every acceptor (see `FastPaxosClient`). */
export type FastRequest<V> = { readonly type: 'propose'; readonly value: V };

export type FastReply<V> =
  | { readonly type: 'chosen'; readonly value: V }
  | { readonly type: 'busy' };

export interface FastDelivery<V> {
  readonly value: V;
}

export type FastEvent =
  | { readonly type: 'roundStarted'; readonly round: FastRound }
  | { readonly type: 'anySent'; readonly round: FastRound }
  | {
      readonly type: 'collision';
      readonly round: FastRound;
      readonly recovery: 'coordinated' | 'uncoordinated';
    }
  | { readonly type: 'backoff'; readonly resumeAt: number }
  | { readonly type: 'learned'; readonly round: FastRound }
  | { readonly type: 'dropped'; readonly from: NodeId; readonly reason: 'unknownPeer' };

export type FastPersist<V> =
  | { readonly type: 'promise'; readonly round: FastRound }
  | { readonly type: 'vote'; readonly round: FastRound; readonly value: V }
  | { readonly type: 'proposalId'; readonly id: ProposalId }
  | { readonly type: 'learned'; readonly value: V };

export interface FastDurable<V> {
  /** Acceptor: rnd, the highest round it joined. */
  readonly promised: FastRound;
  /** Acceptor: (vrnd, vval), its last vote. */
  readonly vote: Vote<V> | null;
  /** Coordinator: the last proposal id used for a round. */
  readonly lastProposalId: ProposalId;
  readonly learned: { readonly value: V } | null;
}

export interface FastTypes<V> {
  readonly msg: FastMsg<V>;
  readonly persist: FastPersist<V>;
  readonly deliver: FastDelivery<V>;
  readonly request: FastRequest<V>;
  readonly reply: FastReply<V>;
  readonly event: FastEvent;
}
