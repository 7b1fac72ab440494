import type { Core, CoreTypes } from '../kernel/core.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { KvCommand, KvOp } from '../kv/machine.ts';
import type { LeaseSource, LessorOptions } from './lessor.ts';
import type { ReplicaReply } from './raft-kv.ts';
import type { CallAnswer, Refusal } from './refusal.ts';
import type { CallOutcome, MemberChange, RouterMsg } from './router-msgs.ts';

/**
 * The call router's inputs, outputs, options and per-protocol binding (router.ts is the
 * router itself).
 */

/** What a replica must be for the router to front it. */
export interface RoutedTypes extends CoreTypes {
  readonly reply: ReplicaReply;
}

/** The replica a router fronts: any core whose replies are KV replica replies. */
export type RoutedReplica<T extends RoutedTypes> = Core<T>;

/** A client's KV call; `timeoutMs` bounds it, `forward: false` keeps it on this node. */
export interface CallRequest {
  readonly type: 'call';
  readonly id: number;
  readonly kind: 'write' | 'read';
  readonly session: number;
  readonly seq: number;
  readonly op: KvOp;
  readonly timeoutMs: number;
  readonly forward: boolean;
}

/**
 * A client's membership change: forwarded to the leader like a write, carried out there
 * step by step as the binding's `MembershipRules` say, and answered `member`.
 */
export interface MemberRequest {
  readonly type: 'member';
  readonly id: number;
  readonly change: MemberChange;
  readonly timeoutMs: number;
  readonly forward: boolean;
}

export type RouterRequest<R> =
  | CallRequest
  | MemberRequest
  /** Handed to the replica as it is (a campaign, a test's probe) and answered `replica`. */
  | { readonly type: 'replica'; readonly req: R };

export type RouterReply<RR> =
  | { readonly type: 'answer'; readonly id: number; readonly answer: CallAnswer }
  /** How a membership change ended: `done`, or refused. */
  | {
      readonly type: 'member';
      readonly id: number;
      readonly outcome: Exclude<CallOutcome, { type: 'result' }>;
    }
  /** The replica's answer to a `replica` request. */
  | { readonly type: 'replica'; readonly reply: RR };

/** What the router tells its host and observers. */
export type RouterNotice =
  /** This node was removed from the cluster: told by `toldBy`, or itself when it applied it. */
  | { readonly type: 'removedFromCluster'; readonly toldBy: NodeId }
  /**
   * Peer `id`'s removal committed: the host stops dialing it and forgets its address;
   * `told`: a removal notice to it is queued in this batch (let it leave first).
   */
  | { readonly type: 'peerRemoved'; readonly id: NodeId; readonly told: boolean }
  /** A peer message was dropped unread. */
  | { readonly type: 'dropped'; readonly from: NodeId; readonly why: string }
  /** A write was proposed through this node's replica (once per call). */
  | { readonly type: 'proposed' };

export interface RouterEvent {
  readonly type: 'router';
  readonly notice: RouterNotice;
}

export interface RouterTypes<T extends RoutedTypes> {
  readonly msg: T['msg'] | RouterMsg;
  readonly persist: T['persist'];
  readonly deliver: T['deliver'];
  readonly request: RouterRequest<T['request']>;
  readonly reply: RouterReply<T['reply']>;
  readonly event: T['event'] | RouterEvent;
}

/** Removal of members for good (Raft): what the router asks of the replica. */
export interface RemovalRules<R> {
  /** Every member with a committed tombstone (read at start and after a snapshot). */
  tombstones(replica: R): readonly NodeId[];
  /** Members whose tombstones a batch of deliveries carries. */
  tombstonesIn(deliver: readonly unknown[]): readonly NodeId[];
  /** Whether `id` is in no role of the committed configuration. */
  goneFromConfig(replica: R, id: NodeId): boolean;
  /** Whether this node is a learner that knows no leader (it then probes its peers). */
  orphaned(replica: R): boolean;
  /** Peers named by the replica's state (configuration and member records). */
  peers(replica: R): readonly NodeId[];
}

/**
 * One step of a membership change on the leader, in order:
 * - `refuseIfSet`: a linearizable read of `key`; the change is refused as `refusal` if the
 *   key holds a value (a retired id's tombstone).
 * - `write`: a write to a reserved key, on this node only (a member record, a tombstone).
 * - `change`: the configuration change itself.
 * Every step may be run again (a retry re-plans from the start): each is idempotent.
 */
export type MemberStep =
  | { readonly type: 'refuseIfSet'; readonly key: string; readonly refusal: Refusal }
  | { readonly type: 'write'; readonly cmd: KvCommand }
  | { readonly type: 'change' };

/** What a leader does for a membership change, decided from its replica's state. */
export type MemberPlan =
  | { readonly type: 'refused'; readonly refusal: Refusal }
  | { readonly type: 'done' }
  | { readonly type: 'steps'; readonly steps: readonly MemberStep[] };

/** Membership changes (Raft): what the router asks of the replica. */
export interface MembershipRules<R, Req> {
  /** The steps of `change` as this leader sees the cluster now. */
  plan(replica: R, change: MemberChange): MemberPlan;
  /** Whether the committed configuration shows `change` (an earlier attempt went through). */
  visible(replica: R, change: MemberChange): boolean;
  /** The replica request that proposes the configuration change. */
  changeRequest(id: number, change: MemberChange): Req;
}

/** What differs per protocol; every function is pure. */
export interface RouterBinding<T extends RoutedTypes, R extends RoutedReplica<T>> {
  /** The protocol's name, for messages ("Raft", "Multi-Paxos"). */
  readonly name: string;
  /** The `type` of every replica peer message (derived from its union: see kernel/kinds.ts). */
  readonly msgKinds: ReadonlySet<string>;
  /** The replica's request for a KV call; `origin` is the follower that forwarded it. */
  kvRequest(id: number, cmd: KvCommand, origin: NodeId | undefined): T['request'];
  /** A request answered with write `seq` of `session`'s result once applied here (Raft). */
  appliedRequest?(id: number, session: number, seq: number): T['request'];
  /** The id a replica reply echoes. */
  replyId(reply: T['reply']): number;
  /** Who leads, as this node's replica knows it: NO_NODE when none. The one place. */
  leader(replica: R): NodeId;
  /** The state machine's leases, for the lessor (without it, leases never expire). */
  leases?(replica: R): LeaseSource;
  /** The refusal this node's own clients would get for `op`, applied to forwarded calls too. */
  admit?(op: KvOp): Refusal | undefined;
  readonly removal?: RemovalRules<R>;
  /** Without them, membership changes are refused as unsupported. */
  readonly membership?: MembershipRules<R, T['request']>;
}

export interface RouterOptions {
  /** The longest any call may wait; a forwarded call's own timeout is capped by it. */
  readonly callTimeoutMs: number;
  /** Pause before asking again after a passing refusal. */
  readonly retryPauseMs: number;
  /**
   * How long a node that knows no leader keeps a call waiting for one. About one election:
   * a leader lost a moment ago is usually replaced by then. Past it the node refuses calls at
   * once (not leader, no hint), so a client cut off from the quorum with this node (check-
   * quorum made its leader step down) learns it in a moment, not at its deadline.
   */
  readonly leaderlessPatienceMs: number;
  /**
   * Attempts after the first of a write (same session and seq) or membership change whose
   * outcome came back unknown.
   */
  readonly unknownRetriesMax: number;
  /** Calls in flight at once, own and forwarded; more are refused as overloaded. */
  readonly callsMax: number;
  /** A removed peer that keeps speaking is told at most this often. */
  readonly removalNoticeIntervalMs: number;
  /** How often a learner checks whether it has had no leader for two checks (probes). */
  readonly probeIntervalMs: number;
  /** Peers known from outside the replica's state (the addresses given at start). */
  readonly peers: readonly NodeId[];
  /** The leader's lease bookkeeping (lessor.ts); `defaultLessorOptions` when absent. */
  readonly lessor?: LessorOptions;
  /** Deliberate bugs for the simulator's broken-variant tests; never set in production. */
  readonly unsafeTestingFaults?: RouterUnsafeTestingFaults;
}

export interface RouterUnsafeTestingFaults {
  /** A follower answers a forwarded write as done the moment it forwards it. */
  readonly answerForwardedWritesEarly?: boolean;
  /**
   * A follower that forwards a write again (the leader it asked refused it or stepped down)
   * sends it as a fresh write, without its session and sequence number, as if a refused
   * attempt could not have applied; the leader then cannot tell the copies apart.
   */
  readonly reforwardWritesWithoutSession?: boolean;
  /**
   * Every node's lessor counts leases down from when it learned of them, and a new leader
   * keeps those deadlines instead of restarting them (lessor.ts, keepDeadlinesOnPromote).
   */
  readonly lessorKeepsDeadlines?: boolean;
}

export const defaultRouterOptions: RouterOptions = {
  callTimeoutMs: 5000,
  retryPauseMs: 25,
  leaderlessPatienceMs: 500,
  unknownRetriesMax: 3,
  callsMax: 10_000,
  removalNoticeIntervalMs: 1000,
  probeIntervalMs: 2000,
  peers: [],
};
