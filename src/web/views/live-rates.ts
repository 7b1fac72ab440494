import type { NodeId } from '../../kernel/ids.ts';

/** One node's commit counter at one poll. */
export interface CommitSample {
  readonly id: NodeId;
  /** Milliseconds (the dashboard's clock) when the counter was read. */
  readonly at: number;
  /** Entries the node has committed since it started; null when it did not answer. */
  readonly commits: number | null;
}

/**
 * Commits per second of each node between two polls, and the cluster's.
 *
 * Every member commits every entry, so summing the nodes' rates counts each entry once per
 * member; the cluster's rate is that of its fastest member (a node that is down or behind
 * would undercount it, and the leader is the first to commit). A node seen for the first
 * time, down, or restarted (its counter went back) has no rate yet.
 */
export function commitRates(
  previous: readonly CommitSample[],
  current: readonly CommitSample[],
): { readonly perNode: ReadonlyMap<NodeId, number>; readonly cluster: number } {
  const before = new Map(previous.map((s) => [s.id, s]));
  const perNode = new Map<NodeId, number>();
  for (const now of current) {
    const then = before.get(now.id);
    if (then === undefined || then.commits === null || now.commits === null) continue;
    if (now.commits < then.commits || now.at <= then.at) continue;
    perNode.set(now.id, ((now.commits - then.commits) * 1000) / (now.at - then.at));
  }
  return { perNode, cluster: Math.max(0, ...perNode.values()) };
}
