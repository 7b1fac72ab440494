import type { NodeId } from '../../kernel/ids.ts';
import type { QuorumSystem } from '../../kernel/quorum.ts';
import {
  compareProposalIds,
  formatProposalId,
  type ProposalId,
  ZERO_PROPOSAL_ID,
} from '../ballot.ts';

/**
 * A Fast Paxos round (Lamport, "Fast Paxos", 2006). `id` is a unique proposal id owned by
 * the coordinator that started the round; `recovery` marks the round that immediately
 * follows round `id` (nothing lies between them in the order), which is what lets a
 * round-`id` vote stand in for a phase-1b message of the recovery round (section 3.3).
 * `fast` is fixed by whoever creates the round and travels with it: a fast round's value
 * is chosen only by a fast quorum.
 */
export interface FastRound {
  readonly id: ProposalId;
  readonly recovery: boolean;
  readonly fast: boolean;
}

export const ZERO_ROUND: FastRound = { id: ZERO_PROPOSAL_ID, recovery: false, fast: false };

export function compareRounds(a: FastRound, b: FastRound): number {
  const byId = compareProposalIds(a.id, b.id);
  if (byId !== 0) return byId;
  return a.recovery === b.recovery ? 0 : a.recovery ? 1 : -1;
}

export function roundEquals(a: FastRound, b: FastRound): boolean {
  return compareRounds(a, b) === 0;
}

export function formatRound(r: FastRound): string {
  return `${formatProposalId(r.id)}${r.recovery ? '+r' : ''}${r.fast ? 'f' : 'c'}`;
}

export function recoveryRound(r: FastRound, fast: boolean): FastRound {
  return { id: r.id, recovery: true, fast };
}

export interface Vote<V> {
  readonly round: FastRound;
  readonly value: V;
}

export interface FastQuorums {
  readonly classic: QuorumSystem;
  readonly fast: QuorumSystem;
}

export type ValuePick<V> =
  /** No value can have been chosen in a lower round: the coordinator is free. */
  | { readonly type: 'free'; readonly candidates: readonly V[] }
  | { readonly type: 'forced'; readonly value: V };

/**
 * The coordinator's value rule (Fast Paxos, section 3.3, rule O4), from the phase-1b votes of
 * the acceptors in `responders` (a classic quorum; null = did not vote yet). Let k be the
 * highest round voted in. If k is classic its single value is forced. If k is fast, a value
 * v is forced when it may have been chosen in k: some fast quorum R has every member of
 * R ∩ responders voting (k, v) — by the intersection requirement at most one v qualifies.
 */
export function pickValue<V>(
  votes: ReadonlyMap<NodeId, Vote<V> | null>,
  quorums: FastQuorums,
  valueKey: (v: V) => string,
): ValuePick<V> {
  let highest: FastRound | null = null;
  for (const vote of votes.values()) {
    if (vote !== null && (highest === null || compareRounds(vote.round, highest) > 0)) {
      highest = vote.round;
    }
  }
  if (highest === null) return { type: 'free', candidates: [] };
  const byValue = new Map<string, { value: V; voters: NodeId[] }>();
  for (const [acceptor, vote] of votes) {
    if (vote === null || !roundEquals(vote.round, highest)) continue;
    const key = valueKey(vote.value);
    const entry = byValue.get(key) ?? { value: vote.value, voters: [] };
    entry.voters.push(acceptor);
    byValue.set(key, entry);
  }
  // Most votes first, then by key: acceptors recovering on their own from the same votes
  // then pick the same value, and a recovery round is less likely to collide again.
  const candidates = [...byValue.entries()]
    .sort(
      ([ka, a], [kb, b]) => b.voters.length - a.voters.length || (ka < kb ? -1 : ka > kb ? 1 : 0),
    )
    .map(([, c]) => c);
  if (!highest.fast && candidates.length === 1 && candidates[0] !== undefined) {
    return { type: 'forced', value: candidates[0].value };
  }
  const outside = quorums.fast.members.filter((m) => !votes.has(m));
  for (const c of candidates) {
    if (quorums.fast.isQuorum([...c.voters, ...outside])) return { type: 'forced', value: c.value };
  }
  return { type: 'free', candidates: candidates.map((c) => c.value) };
}

/**
 * Collision in a fast round (section 3.3): the votes seen from a classic quorum leave no
 * value able to reach a fast quorum, even if every silent acceptor voted for it.
 */
export function isCollision<V>(
  votes: ReadonlyMap<NodeId, V>,
  quorums: FastQuorums,
  valueKey: (v: V) => string,
): boolean {
  if (!quorums.classic.isQuorum(votes.keys())) return false;
  const byValue = new Map<string, NodeId[]>();
  for (const [acceptor, value] of votes) {
    const key = valueKey(value);
    byValue.set(key, [...(byValue.get(key) ?? []), acceptor]);
  }
  const silent = quorums.fast.members.filter((m) => !votes.has(m));
  for (const voters of byValue.values()) {
    if (quorums.fast.isQuorum([...voters, ...silent])) return false;
  }
  return true;
}
