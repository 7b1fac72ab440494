import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { ProposalId } from '../ballot.ts';

/** One client command inside a log instance; (client, id) lets the service dedupe. */
export interface LogCommand<C> {
  readonly client: ClientId;
  readonly id: number;
  readonly command: C;
}

/** The value of one instance: a batch of commands. The empty batch is the no-op. */
export type Batch<C> = readonly LogCommand<C>[];

export interface AcceptedInstance<C> {
  readonly instance: number;
  readonly ballot: ProposalId;
  readonly value: Batch<C>;
}

export interface ChosenInstance<C> {
  readonly instance: number;
  readonly value: Batch<C>;
}

/** Multi-Paxos messages. Wire codes (the `type` strings) are append-only. */
export type MultiMsg<C, S> =
  /** Phase 1a for every instance from `fromInstance` on. */
  | { readonly type: 'prepare'; readonly ballot: ProposalId; readonly fromInstance: number }
  /** Phase 1b: everything accepted from `fromInstance` on; `snapshotUpTo` lets a lagging candidate notice it must catch up first. */
  | {
      readonly type: 'promise';
      readonly ballot: ProposalId;
      readonly accepted: readonly AcceptedInstance<C>[];
      readonly snapshotUpTo: number;
    }
  | { readonly type: 'nack'; readonly ballot: ProposalId; readonly promised: ProposalId }
  /** Phase 2a for one instance; `commitIndex`: every instance below it is chosen. */
  | {
      readonly type: 'accept';
      readonly ballot: ProposalId;
      readonly instance: number;
      readonly value: Batch<C>;
      readonly commitIndex: number;
    }
  | { readonly type: 'accepted'; readonly ballot: ProposalId; readonly instance: number }
  /** Leader liveness, lease renewal and commit propagation. */
  | {
      readonly type: 'heartbeat';
      readonly ballot: ProposalId;
      readonly seq: number;
      readonly commitIndex: number;
    }
  | { readonly type: 'heartbeatAck'; readonly ballot: ProposalId; readonly seq: number }
  /** A lagging replica asks any peer for chosen instances from `fromInstance`. */
  | { readonly type: 'catchUp'; readonly fromInstance: number }
  | { readonly type: 'chosenEntries'; readonly entries: readonly ChosenInstance<C>[] }
  | { readonly type: 'snapshot'; readonly upTo: number; readonly data: S };

export type MultiRequest<C> =
  | { readonly type: 'command'; readonly id: number; readonly command: C }
  /** A linearizable read served locally by a leader holding its lease. */
  | { readonly type: 'read'; readonly id: number };

export type MultiReply =
  /** The command is in the leader's pipeline; its outcome arrives as a delivery. */
  | { readonly type: 'proposed'; readonly id: number }
  | { readonly type: 'notLeader'; readonly id: number; readonly leaderHint: NodeId }
  /** Serve the read from state that has applied every instance below `readIndex`. */
  | { readonly type: 'readOk'; readonly id: number; readonly readIndex: number }
  | {
      readonly type: 'unavailable';
      readonly id: number;
      readonly reason: 'busy' | 'noLease';
    };

/** Applied by the host in order: chosen instances, or a snapshot that replaces its state. */
export type MultiDelivery<C, S> =
  | { readonly type: 'chosen'; readonly instance: number; readonly value: Batch<C> }
  | { readonly type: 'snapshot'; readonly upTo: number; readonly data: S };

export type MultiEvent =
  | { readonly type: 'campaign'; readonly ballot: ProposalId; readonly fromInstance: number }
  | { readonly type: 'leader'; readonly ballot: ProposalId; readonly recovered: number }
  | { readonly type: 'follower'; readonly leader: NodeId }
  | { readonly type: 'catchUpNeeded'; readonly fromInstance: number }
  | { readonly type: 'dropped'; readonly from: NodeId; readonly reason: 'unknownPeer' };

export type MultiPersist<C, S> =
  | { readonly type: 'promise'; readonly ballot: ProposalId }
  | {
      readonly type: 'accept';
      readonly instance: number;
      readonly ballot: ProposalId;
      readonly value: Batch<C>;
    }
  | { readonly type: 'proposalId'; readonly id: ProposalId }
  | { readonly type: 'chosen'; readonly instance: number; readonly value: Batch<C> }
  /** Everything up to `upTo` is in `data`; earlier log entries are dropped. */
  | { readonly type: 'snapshot'; readonly upTo: number; readonly data: S };

export interface MultiDurable<C, S> {
  readonly promised: ProposalId;
  readonly lastProposalId: ProposalId;
  readonly accepted: ReadonlyMap<number, { readonly ballot: ProposalId; readonly value: Batch<C> }>;
  readonly chosen: ReadonlyMap<number, Batch<C>>;
  readonly snapshot: { readonly upTo: number; readonly data: S } | null;
}

export interface MultiTypes<C, S> {
  readonly msg: MultiMsg<C, S>;
  readonly persist: MultiPersist<C, S>;
  readonly deliver: MultiDelivery<C, S>;
  readonly request: MultiRequest<C>;
  readonly reply: MultiReply;
  readonly event: MultiEvent;
}
