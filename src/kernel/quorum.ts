import { assert } from './assert.ts';
import type { NodeId } from './ids.ts';

/**
 * Quorum math, kept apart from any protocol state (as etcd-io/raft's quorum package is):
 * majority sizes, vote tallies, the highest index a quorum has acknowledged, and general
 * quorum systems whose intersection properties can be checked — Fast Paxos states its
 * classic and fast quorums this way.
 */

/** The smallest majority of n voters: floor(n/2) + 1. */
export function majority(n: number): number {
  assert(Number.isInteger(n) && n >= 1, `majority needs n >= 1 voters, got ${n}`);
  return Math.floor(n / 2) + 1;
}

/** A set of members and a rule for which subsets of them are quorums. */
export interface QuorumSystem {
  readonly members: readonly NodeId[];
  /** Whether `nodes` (members not in `members` are ignored) contains a quorum. */
  isQuorum(nodes: Iterable<NodeId>): boolean;
  /** The minimal quorums, enumerated; throws past `limit` of them. */
  minimalQuorums(limit?: number): NodeId[][];
  describe(): string;
}

function assertDistinct(members: readonly NodeId[]): void {
  assert(
    new Set(members).size === members.length,
    `quorum members must be distinct: ${members.join(',')}`,
  );
  assert(members.length >= 1, 'a quorum system needs at least one member');
}

function countMembers(members: ReadonlySet<NodeId>, nodes: Iterable<NodeId>): number {
  const seen = new Set<NodeId>();
  for (const n of nodes) if (members.has(n)) seen.add(n);
  return seen.size;
}

/** Combinations of `size` items, in lexicographic order; throws past `limit`. */
function combinations(items: readonly NodeId[], size: number, limit: number): NodeId[][] {
  const out: NodeId[][] = [];
  const pick: NodeId[] = [];
  const go = (start: number) => {
    if (pick.length === size) {
      assert(out.length < limit, `more than ${limit} quorums to enumerate`);
      out.push([...pick]);
      return;
    }
    for (let i = start; i <= items.length - (size - pick.length); i++) {
      pick.push(items[i] as NodeId);
      go(i + 1);
      pick.pop();
    }
  };
  go(0);
  return out;
}

/** Every subset of at least `size` members is a quorum (majority when size = majority(n)). */
export class ThresholdQuorum implements QuorumSystem {
  readonly members: readonly NodeId[];
  readonly size: number;
  private readonly memberSet: ReadonlySet<NodeId>;

  constructor(members: readonly NodeId[], size: number) {
    assertDistinct(members);
    assert(
      Number.isInteger(size) && size >= 1 && size <= members.length,
      `quorum size must be in 1..${members.length}, got ${size}`,
    );
    this.members = [...members];
    this.size = size;
    this.memberSet = new Set(members);
  }

  static majorityOf(members: readonly NodeId[]): ThresholdQuorum {
    return new ThresholdQuorum(members, majority(members.length));
  }

  isQuorum(nodes: Iterable<NodeId>): boolean {
    return countMembers(this.memberSet, nodes) >= this.size;
  }

  minimalQuorums(limit = 100_000): NodeId[][] {
    return combinations(this.members, this.size, limit);
  }

  describe(): string {
    return `${this.size} of {${this.members.join(',')}}`;
  }
}

/** A quorum system given by its quorums (any superset of a listed set is a quorum too). */
export class ExplicitQuorum implements QuorumSystem {
  readonly members: readonly NodeId[];
  readonly quorums: readonly (readonly NodeId[])[];
  private readonly memberSet: ReadonlySet<NodeId>;

  constructor(members: readonly NodeId[], quorums: readonly (readonly NodeId[])[]) {
    assertDistinct(members);
    assert(quorums.length >= 1, 'an explicit quorum system needs at least one quorum');
    this.memberSet = new Set(members);
    for (const q of quorums) {
      assert(q.length >= 1, 'a quorum must not be empty');
      assert(
        q.every((n) => this.memberSet.has(n)),
        `quorum {${q.join(',')}} names a non-member`,
      );
    }
    this.members = [...members];
    this.quorums = quorums.map((q) => [...new Set(q)].sort((a, b) => a - b));
  }

  isQuorum(nodes: Iterable<NodeId>): boolean {
    const have = new Set(nodes);
    return this.quorums.some((q) => q.every((n) => have.has(n)));
  }

  minimalQuorums(limit = 100_000): NodeId[][] {
    const sets = this.quorums.map((q) => new Set(q));
    const minimal = this.quorums.filter(
      (q, i) =>
        !sets.some(
          (other, j) => j !== i && other.size < q.length && [...other].every((n) => q.includes(n)),
        ),
    );
    assert(minimal.length <= limit, `more than ${limit} quorums to enumerate`);
    return minimal.map((q) => [...q]);
  }

  describe(): string {
    return this.quorums.map((q) => `{${q.join(',')}}`).join(' | ');
  }
}

/**
 * Whether every choice of one quorum from each system has a member in common. With two
 * copies of a classic system this is "any two classic quorums intersect"; with one classic
 * and two fast systems it is Fast Paxos's requirement (Lamport 2006, section 2.3).
 *
 * Threshold systems over one member set are decided by counting (sizes s_i of n members
 * must satisfy sum(s_i) > (k - 1) * n); anything else by enumerating minimal quorums.
 */
export function quorumsIntersect(systems: readonly QuorumSystem[]): boolean {
  assert(systems.length >= 1, 'quorumsIntersect needs at least one system');
  const first = systems[0] as QuorumSystem;
  const sameMembers = (s: QuorumSystem) =>
    s.members.length === first.members.length && s.members.every((m) => first.members.includes(m));
  if (systems.every((s) => s instanceof ThresholdQuorum && sameMembers(s))) {
    const n = first.members.length;
    const total = systems.reduce((sum, s) => sum + (s as ThresholdQuorum).size, 0);
    return total > (systems.length - 1) * n;
  }
  return quorumsIntersectByEnumeration(systems);
}

/** The brute-force definition; exported so property tests can compare against it. */
export function quorumsIntersectByEnumeration(systems: readonly QuorumSystem[]): boolean {
  const lists = systems.map((s) => s.minimalQuorums());
  const go = (i: number, common: ReadonlySet<NodeId>): boolean => {
    if (common.size === 0) return false;
    if (i === lists.length) return true;
    for (const q of lists[i] as NodeId[][]) {
      const next = new Set(q.filter((n) => common.has(n)));
      if (!go(i + 1, next)) return false;
    }
    return true;
  };
  const all = new Set(systems.flatMap((s) => s.members));
  return go(0, all);
}

/**
 * Fast Paxos quorum sizes for n acceptors: classic quorums are majorities, and fast
 * quorums are the smallest size q_f with q_c + 2 * q_f > 2n, so that any classic quorum and
 * any two fast quorums intersect (n = 5: classic 3, fast 4).
 */
export function fastPaxosQuorumSizes(n: number): { classic: number; fast: number } {
  const classic = majority(n);
  const fast = Math.floor((2 * n - classic) / 2) + 1;
  assert(fast <= n, `no fast quorum exists for n = ${n}`);
  assert(classic + 2 * fast > 2 * n, 'fast quorum size breaks the intersection requirement');
  return { classic, fast };
}

export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * Tally of a vote among `voters`: won once a majority said yes, lost once a majority can no
 * longer be reached, pending otherwise. Votes from non-voters are ignored.
 */
export function voteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  if (voters.length === 0) return 'won'; // an empty configuration agrees with everything (etcd-io/raft does the same)
  const needed = majority(voters.length);
  let yes = 0;
  let no = 0;
  for (const v of voters) {
    const vote = votes.get(v);
    if (vote === true) yes++;
    else if (vote === false) no++;
  }
  if (yes >= needed) return 'won';
  if (voters.length - no < needed) return 'lost';
  return 'pending';
}

/**
 * The largest index that a majority of `voters` has acknowledged: sort the voters'
 * acknowledged indexes in descending order and take the majority-th. Voters with no entry in
 * `acked` count as 0. An empty voter set yields +Infinity (it constrains nothing).
 */
export function committedIndex(voters: readonly NodeId[], acked: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  // A leader asks after every acknowledgement: sort in a reused buffer, not a new array
  // (the copy and sort were a busy leader's largest single source of garbage).
  if (ackScratch.length < n) ackScratch = new Float64Array(2 * n);
  const values = ackScratch;
  for (let i = 0; i < n; i++) {
    const v = acked(voters[i] as NodeId);
    let j = i;
    for (; j > 0 && (values[j - 1] as number) < v; j--) values[j] = values[j - 1] as number;
    values[j] = v;
  }
  return values[majority(n) - 1] as number;
}

let ackScratch = new Float64Array(16);

/** Joint consensus: committed only when committed in both configurations. */
export function jointCommittedIndex(
  incoming: readonly NodeId[],
  outgoing: readonly NodeId[],
  acked: (id: NodeId) => number,
): number {
  return Math.min(committedIndex(incoming, acked), committedIndex(outgoing, acked));
}
