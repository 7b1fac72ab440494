import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { CommitEntry, Join, RingId } from './types.ts';
import { ringEquals } from './types.ts';

/**
 * The set arithmetic of Totem's membership protocol (paper §4, corosync memb_*): gather
 * sets, consensus, ring order, and what Recovery must re-send. Pure functions, no state.
 */

/** Ids ascending, without repeats: the ring order. */
export function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

export function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The members a gather round is forming a ring of: processes not known failed. */
export function liveSet(procs: ReadonlySet<NodeId>, failed: ReadonlySet<NodeId>): NodeId[] {
  return sortedIds([...procs].filter((p) => !failed.has(p)));
}

/** Whether `join` states exactly these sets (both sorted). */
export function joinAgrees(
  join: Join,
  procs: readonly NodeId[],
  failed: readonly NodeId[],
): boolean {
  return sameIds(join.procs, procs) && sameIds(join.failed, failed);
}

/**
 * Consensus (paper §4.2): every live member other than us has sent a join stating exactly
 * our sets. Returns the live members still to agree (empty = consensus).
 */
export function notYetAgreed(
  me: NodeId,
  procs: ReadonlySet<NodeId>,
  failed: ReadonlySet<NodeId>,
  joins: ReadonlyMap<NodeId, Join>,
): NodeId[] {
  const p = sortedIds(procs);
  const f = sortedIds(failed);
  return liveSet(procs, failed).filter((m) => {
    if (m === me) return false;
    const j = joins.get(m);
    return j === undefined || !joinAgrees(j, p, f);
  });
}

/** Our successor on a ring (members ascending, wrapping round). */
export function successor(members: readonly NodeId[], me: NodeId): NodeId {
  const i = members.indexOf(me);
  assert(i >= 0, `node ${me} is not on the ring ${members.join(',')}`);
  return members[(i + 1) % members.length]!;
}

/** Whether the commit token's entries are one per member. */
export function entriesComplete(
  entries: readonly CommitEntry[],
  members: readonly NodeId[],
): boolean {
  return sameIds(sortedIds(entries.map((e) => e.id)), members) && entries.length === members.length;
}

/** What Recovery does about one old ring: which members came from it, and the range to repair. */
export interface RecoveryPlan {
  /** The transitional configuration: new-ring members whose last regular ring is `ring`. */
  readonly survivors: readonly NodeId[];
  /** Lowest aru among them: everyone holds or delivered 1..low. */
  readonly low: number;
  /** Highest seq any of them holds: nothing above it is delivered. */
  readonly high: number;
}

export function recoveryPlan(entries: readonly CommitEntry[], ring: RingId): RecoveryPlan {
  const from = entries.filter((e) => ringEquals(e.oldRing, ring));
  assert(from.length >= 1, 'we came from our own old ring');
  return {
    survivors: sortedIds(from.map((e) => e.id)),
    low: Math.min(...from.map((e) => e.aru)),
    high: Math.max(...from.map((e) => e.highSeq)),
  };
}
