import { assert } from '../kernel/assert.ts';
import { assertNodeId, NO_NODE, type NodeId } from '../kernel/ids.ts';

/**
 * A Paxos proposal id (ballot): a (round, node) pair compared lexicographically. The round
 * carries the high bits (a timestamp in ms or a counter), the node id the low bits, so the
 * ids of two nodes never collide. A pair of safe integers rather than one packed number
 * because ms timestamps times 2^32 node ids would overflow 2^53.
 */
export interface ProposalId {
  readonly round: number;
  readonly node: NodeId;
}

/** Below every real id: "no promise yet", "nothing accepted". */
export const ZERO_PROPOSAL_ID: ProposalId = { round: 0, node: NO_NODE };

/** Negative, zero or positive as `a` is below, equal to or above `b`. */
export function compareProposalIds(a: ProposalId, b: ProposalId): number {
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return 0;
}

export function proposalIdEquals(a: ProposalId, b: ProposalId): boolean {
  return a.round === b.round && a.node === b.node;
}

export function maxProposalId(a: ProposalId, b: ProposalId): ProposalId {
  return compareProposalIds(a, b) >= 0 ? a : b;
}

export function isZeroProposalId(id: ProposalId): boolean {
  return id.round === 0 && id.node === NO_NODE;
}

export function formatProposalId(id: ProposalId): string {
  return `${id.round}.${id.node}`;
}

/**
 * The next id a proposer may use: round max(lastUsed, highestSeen, now) + 1 with its own
 * node id. `lastUsed` must be the durably persisted last id, so a clock that stepped back
 * across a restart never re-issues an id; `highestSeen` lets a proposer jump above a rival
 * that NACKed it (the new id is strictly above every id it has heard of).
 */
export function nextProposalId(
  node: NodeId,
  nowMs: number,
  lastUsed: ProposalId,
  highestSeen: ProposalId,
): ProposalId {
  assertNodeId(node, 'proposer node id');
  assert(Number.isFinite(nowMs), `proposal clock must be finite, got ${nowMs}`);
  const round = Math.max(lastUsed.round, highestSeen.round, Math.floor(nowMs), 0) + 1;
  assert(Number.isSafeInteger(round), `proposal round ${round} is past 2^53`);
  const id = { round, node };
  assert(compareProposalIds(id, lastUsed) > 0, 'a new proposal id must exceed the last one used');
  assert(compareProposalIds(id, highestSeen) > 0, 'a new proposal id must exceed every id seen');
  return id;
}
