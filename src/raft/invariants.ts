import type { NodeId } from '../kernel/ids.ts';
import type { RaftLogView } from './log.ts';
import type { RaftDeliver, Role } from './types.ts';

/** What the checks need of a node: a few status fields and its log. */
export interface RaftNodeView<C> {
  readonly status: {
    readonly id: NodeId;
    readonly role: Role;
    readonly term: number;
    readonly commit: number;
  };
  readonly log: RaftLogView<C>;
}

/**
 * Log Matching (paper figure 3): if two logs hold an entry with the same index and term, they
 * hold the same entries up to it. Checked over the indexes both logs still hold, scanning down
 * from the top: below the highest common (index, term), every term must agree.
 *
 * With `aboveCommit`, each pair is checked only above the lower of the two commit indexes:
 * what both have committed is covered by State Machine Safety (every committed entry is
 * compared with the one committed index), so the cost is the uncommitted tails only.
 */
export function checkLogMatching<C>(
  views: readonly RaftNodeView<C>[],
  aboveCommit = false,
): string[] {
  const violations: string[] = [];
  for (let a = 0; a < views.length; a++) {
    for (let b = a + 1; b < views.length; b++) {
      const x = views[a] as RaftNodeView<C>;
      const y = views[b] as RaftNodeView<C>;
      const committed = aboveCommit ? Math.min(x.status.commit, y.status.commit) + 1 : 0;
      const lo = Math.max(x.log.firstIndex, y.log.firstIndex, committed);
      let matched = false;
      for (let i = Math.min(x.log.lastIndex, y.log.lastIndex); i >= lo; i--) {
        const same =
          x.log.term(i) === y.log.term(i) && x.log.entry(i)?.kind === y.log.entry(i)?.kind;
        if (matched && !same) {
          violations.push(
            `log matching: nodes ${x.status.id} and ${y.status.id} agree above index ${i} but differ at it`,
          );
          break;
        }
        if (same) matched = true;
      }
    }
  }
  return violations;
}

interface CommittedEntry {
  readonly term: number;
  /** The lowest current term of a node that reported it committed. */
  readonly knownAtTerm: number;
}

/**
 * Stateful safety checker for a Raft cluster, called after every step with every live node's
 * view (and with every delivery), as TigerBeetle's state checker sits outside the replicas.
 * Checks the paper's figure 3 properties:
 * - Election Safety: at most one leader per term.
 * - Log Matching (via `checkLogMatching`).
 * - Leader Completeness: a leader of term T holds every entry committed in a term below T.
 * - State Machine Safety: no two nodes commit or apply different entries at one index; each
 *   node applies indexes in order, each once (a snapshot jumps to its index).
 * Returns violations as text; an empty list means all hold.
 */
export class RaftSafetyChecker {
  private readonly leaders = new Map<number, NodeId>();
  private readonly committed = new Map<number, CommittedEntry>();
  /** Committed indexes in the order first seen, so each leader term checks each once. */
  private readonly committedOrder: number[] = [];
  /** Per leader term: how much of `committedOrder` its leader was checked against. */
  private readonly leaderChecked = new Map<number, number>();
  private readonly seenCommit = new Map<NodeId, number>();
  private readonly deliveredUpTo = new Map<NodeId, number>();

  observe<C>(views: readonly RaftNodeView<C>[]): string[] {
    const violations: string[] = [];
    for (const v of views) this.checkElection(v, violations);
    for (const v of views) this.recordCommits(v, violations);
    violations.push(...checkLogMatching(views, true));
    for (const v of views)
      if (v.status.role === 'leader') this.checkLeaderCompleteness(v, violations);
    return violations;
  }

  /** A node handed `item` to its state machine. */
  delivered<C>(node: NodeId, item: RaftDeliver<C>): string[] {
    const last = this.deliveredUpTo.get(node) ?? 0;
    if (item.kind === 'snapshot') {
      const { index, term } = item.snapshot.meta;
      this.deliveredUpTo.set(node, index);
      return this.agree(index, term, `node ${node} installed snapshot`);
    }
    const { index, term } = item.entry;
    const violations: string[] = [];
    if (index !== last + 1) {
      violations.push(`state machine safety: node ${node} applied index ${index} after ${last}`);
    }
    this.deliveredUpTo.set(node, index);
    violations.push(...this.agree(index, term, `node ${node} applied`));
    return violations;
  }

  /** The node restarted with an empty state machine: it will re-apply from its snapshot. */
  restarted(node: NodeId): void {
    this.deliveredUpTo.set(node, 0);
    this.seenCommit.set(node, 0);
  }

  private agree(index: number, term: number, what: string): string[] {
    const known = this.committed.get(index);
    if (known !== undefined && known.term !== term) {
      return [
        `state machine safety: ${what} (${index}, term ${term}) but term ${known.term} was committed there`,
      ];
    }
    if (known === undefined)
      this.committed.set(index, { term, knownAtTerm: Number.POSITIVE_INFINITY });
    return [];
  }

  private checkElection<C>(v: RaftNodeView<C>, violations: string[]): void {
    if (v.status.role !== 'leader') return;
    const other = this.leaders.get(v.status.term);
    if (other !== undefined && other !== v.status.id) {
      violations.push(
        `election safety: nodes ${other} and ${v.status.id} both lead term ${v.status.term}`,
      );
    }
    this.leaders.set(v.status.term, v.status.id);
  }

  private recordCommits<C>(v: RaftNodeView<C>, violations: string[]): void {
    const from = Math.max((this.seenCommit.get(v.status.id) ?? 0) + 1, v.log.firstIndex);
    for (let i = from; i <= v.status.commit; i++) {
      const term = v.log.term(i);
      if (term === undefined) continue;
      const known = this.committed.get(i);
      if (known !== undefined && known.term !== term) {
        violations.push(
          `state machine safety: node ${v.status.id} committed term ${term} at ${i}, another committed term ${known.term}`,
        );
        continue;
      }
      const knownAtTerm = Math.min(known?.knownAtTerm ?? Number.POSITIVE_INFINITY, v.status.term);
      this.committed.set(i, { term, knownAtTerm });
      if (known === undefined) this.committedOrder.push(i);
    }
    this.seenCommit.set(
      v.status.id,
      Math.max(this.seenCommit.get(v.status.id) ?? 0, v.status.commit),
    );
  }

  /**
   * A leader never loses entries during its term, so each committed entry is checked against
   * the leader of a term once. (An entry whose commit is later attributed to an earlier term
   * is not re-checked; State Machine Safety still covers it.)
   */
  private checkLeaderCompleteness<C>(v: RaftNodeView<C>, violations: string[]): void {
    const term = v.status.term;
    for (let k = this.leaderChecked.get(term) ?? 0; k < this.committedOrder.length; k++) {
      const index = this.committedOrder[k] as number;
      const c = this.committed.get(index) as CommittedEntry;
      if (c.knownAtTerm >= term || index <= v.log.snapshotIndex) continue;
      if (v.log.term(index) !== c.term) {
        violations.push(
          `leader completeness: leader ${v.status.id} of term ${term} lacks entry ${index} (term ${c.term}) committed by term ${c.knownAtTerm}`,
        );
        return;
      }
    }
    this.leaderChecked.set(term, this.committedOrder.length);
  }
}
