import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import { compareProposalIds, isZeroProposalId, type ProposalId } from './ballot.ts';
import type { AcceptorView } from './basic/acceptor.ts';
import type { ProposerView } from './basic/proposer.ts';
import type { FastAcceptorView } from './fast/acceptor.ts';
import { compareRounds } from './fast/round.ts';

/**
 * What each Paxos core asserts of its own state at the end of every input (as Raft's
 * `checkInvariants` does): the local half of safety, which needs no other node to check.
 * The cluster-wide properties (one value chosen, promises kept across crashes) are the
 * simulator's, in ./invariants.ts. A broken invariant throws `InvariantError`.
 *
 * A core built with an unsafe testing fault that breaks one of these on purpose skips that
 * check: the fault is there to prove that the cluster-wide checks catch the bug, which a
 * local assertion firing first would hide.
 */

const above = (a: ProposalId, b: ProposalId) => compareProposalIds(a, b) > 0;

export interface BasicCoreView<V> {
  readonly id: NodeId;
  readonly acceptor: AcceptorView<V>;
  readonly proposer: ProposerView<V>;
  readonly learned: boolean;
  readonly pendingClients: number;
  readonly pendingClientsMax: number;
  /** The `acceptBelowPromise` fault: the acceptor may hold a proposal below its promise. */
  readonly acceptsBelowPromise: boolean;
}

export function checkBasicInvariants<V>(v: BasicCoreView<V>): void {
  const { accepted, promised } = v.acceptor;
  assert(
    v.acceptsBelowPromise || accepted === null || !above(accepted.id, promised),
    'acceptor holds a proposal above its promise',
  );
  assert(!v.learned || v.proposer.phase === 'done', 'a learner whose proposer still runs');
  assert(!v.learned || v.pendingClients === 0, 'clients still wait after the value was learned');
  assert(v.pendingClients <= v.pendingClientsMax, 'more waiting clients than pendingClientsMax');
  const last = v.proposer.lastProposal;
  assert(last === null || last.id.node === v.id, "a proposal under another node's id");
}

export interface FastCoreView<V> {
  readonly acceptor: FastAcceptorView<V>;
  readonly coordinatorPhase: string;
  readonly learned: boolean;
  readonly pendingClients: number;
  readonly pendingClientsMax: number;
}

export function checkFastInvariants<V>(v: FastCoreView<V>): void {
  const { vote, promised } = v.acceptor;
  assert(
    vote === null || compareRounds(vote.round, promised) <= 0,
    'acceptor voted in a round above its promise',
  );
  assert(!v.learned || v.coordinatorPhase === 'done', 'a learner whose coordinator still runs');
  assert(!v.learned || v.pendingClients === 0, 'clients still wait after the value was learned');
  assert(v.pendingClients <= v.pendingClientsMax, 'more waiting clients than pendingClientsMax');
}

export interface MultiCoreView {
  readonly id: NodeId;
  readonly promised: ProposalId;
  /** The highest ballot among the accepted instances the log holds. */
  readonly highestAccepted: ProposalId;
  readonly lastProposalId: ProposalId;
  readonly highestSeen: ProposalId;
  readonly role: 'follower' | 'candidate' | 'leader';
  /** The candidate's or leader's ballot; null for a follower. */
  readonly ownBallot: ProposalId | null;
  /** The leader a follower follows (NO_NODE: none known). */
  readonly followed: NodeId;
  readonly frontier: number;
  readonly frontierChosen: boolean;
  readonly snapshotUpTo: number;
  /** The leader's queue of commands waiting for a pipeline slot (0 otherwise). */
  readonly queued: number;
  readonly pendingRequestsMax: number;
}

export function checkMultiInvariants(v: MultiCoreView): void {
  assert(!above(v.highestAccepted, v.promised), 'acceptor accepted a ballot above its promise');
  assert(!above(v.promised, v.highestSeen), 'promised a ballot above the highest seen');
  assert(!above(v.lastProposalId, v.highestSeen), 'proposed a ballot above the highest seen');
  assert(
    isZeroProposalId(v.lastProposalId) || v.lastProposalId.node === v.id,
    "the last proposal id is another node's",
  );
  assert(v.frontier > v.snapshotUpTo, 'the frontier is inside the snapshot');
  assert(!v.frontierChosen, 'the frontier instance is chosen but not delivered');
  assert((v.role === 'follower') === (v.ownBallot === null), 'a ballot that fits no role');
  if (v.ownBallot !== null) {
    assert(
      compareProposalIds(v.ownBallot, v.lastProposalId) === 0,
      'campaigning or leading under a ballot other than the last proposal id',
    );
    assert(!above(v.promised, v.ownBallot), 'leading or campaigning below its own promise');
  }
  assert(v.followed !== v.id, 'a follower that follows itself');
  assert(v.role === 'leader' || v.queued === 0, 'a non-leader queues commands');
  assert(v.queued <= v.pendingRequestsMax, 'more queued commands than pendingRequestsMax');
}
