import type { NodeId } from '../../kernel/ids.ts';
import type { ProposalId } from '../ballot.ts';

/** A proposal an acceptor has accepted: the id and the value it carried. */
export interface AcceptedProposal<V> {
  readonly id: ProposalId;
  readonly value: V;
}

/**
 * Single-decree Paxos messages (Lamport, "Paxos Made Simple", section 2.2). Wire codes are
 * the `type` strings; add new ones, never rename.
 */
export type BasicMsg<V> =
  /** Phase 1a: proposer asks for a promise not to accept ids below `id`. */
  | { readonly type: 'prepare'; readonly id: ProposalId }
  /** Phase 1b: the promise, with the highest-id proposal accepted so far (or null). */
  | {
      readonly type: 'promise';
      readonly id: ProposalId;
      readonly accepted: AcceptedProposal<V> | null;
    }
  /** Phase 2a: accept `value` under `id`. */
  | { readonly type: 'accept'; readonly id: ProposalId; readonly value: V }
  /** Phase 2b: the acceptor accepted; sent to every learner (every member). */
  | { readonly type: 'accepted'; readonly id: ProposalId; readonly value: V }
  /** Refusal of a Prepare or Accept for `id`: the acceptor has promised `promised`. */
  | {
      readonly type: 'nack';
      readonly id: ProposalId;
      readonly promised: ProposalId;
    }
  /** A node that learned the value tells a peer still working on the decree. */
  | { readonly type: 'decided'; readonly value: V };

export type BasicRequest<V> = { readonly type: 'propose'; readonly value: V };

export type BasicReply<V> =
  /** The decree is decided; `value` may be another client's. */
  | { readonly type: 'chosen'; readonly value: V }
  /** Too many clients already wait at this node (`pendingClientsMax`). */
  | { readonly type: 'busy' };

/** The chosen value, delivered once per node. */
export interface BasicDelivery<V> {
  readonly value: V;
}

export type BasicEvent =
  | { readonly type: 'phase1'; readonly id: ProposalId }
  | { readonly type: 'phase2'; readonly id: ProposalId }
  | { readonly type: 'nacked'; readonly id: ProposalId; readonly promised: ProposalId }
  | { readonly type: 'backoff'; readonly resumeAt: number }
  | { readonly type: 'learned' }
  | { readonly type: 'dropped'; readonly from: NodeId; readonly reason: 'unknownPeer' };

/** One durable write; `applyBasicPersist` defines what it means. */
export type BasicPersist<V> =
  | { readonly type: 'promise'; readonly id: ProposalId }
  | { readonly type: 'accept'; readonly id: ProposalId; readonly value: V }
  | { readonly type: 'proposalId'; readonly id: ProposalId }
  | { readonly type: 'learned'; readonly value: V };

/** Everything a Basic Paxos node keeps across a crash. */
export interface BasicDurable<V> {
  /** Acceptor: no Prepare at or below, no Accept below this id is answered. */
  readonly promised: ProposalId;
  /** Acceptor: the highest-id proposal accepted. */
  readonly accepted: AcceptedProposal<V> | null;
  /** Proposer: the last id it used, so a clock stepping back never re-issues it. */
  readonly lastProposalId: ProposalId;
  /** Learner: the chosen value once learned. */
  readonly learned: { readonly value: V } | null;
}

export interface BasicTypes<V> {
  readonly msg: BasicMsg<V>;
  readonly persist: BasicPersist<V>;
  readonly deliver: BasicDelivery<V>;
  readonly request: BasicRequest<V>;
  readonly reply: BasicReply<V>;
  readonly event: BasicEvent;
}
