import type { NodeId } from '../../kernel/ids.ts';
import type { Flight, NodeState } from '../../sim/interactive.ts';
import type { MessageTone } from '../../sim/interactive-protocol.ts';

/**
 * What one frame shows, whoever produced it: the live playground or a replayed trace.
 * The renderer knows nothing else, so both views draw the same way.
 */
export interface Scene {
  readonly now: number;
  readonly nodes: readonly NodeState[];
  readonly flights: readonly Flight[];
  /** The node the user picked (highlighted), 0 for none. */
  readonly selected: NodeId;
}

export interface Point {
  x: number;
  y: number;
}

export const roleColors: Readonly<Record<string, string>> = {
  leader: '#f2b134',
  primary: '#f2b134',
  candidate: '#ef6f3c',
  preCandidate: '#f39c6b',
  follower: '#4a90d9',
  backup: '#4a90d9',
  down: '#8a8f98',
  acceptor: '#4a90d9',
  preparing: '#ef6f3c',
  accepting: '#3cb371',
  learned: '#f2b134',
  coordinator: '#b07cd8',
  waiting: '#6c8fb5',
  seeking: '#f39c6b',
};

export const toneColors: Readonly<Record<MessageTone, string>> = {
  vote: '#ef6f3c',
  voteReply: '#f7a35c',
  append: '#3cb371',
  appendReply: '#8fd19e',
  heartbeat: '#9aa5b1',
  other: '#b07cd8',
};

export function roleColor(role: string): string {
  return roleColors[role] ?? '#4a90d9';
}

/** Default positions: nodes evenly on a circle, the first at the top. */
export function ringLayout(count: number, center: Point, radius: number): Point[] {
  return Array.from({ length: count }, (_, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / count;
    return { x: center.x + radius * Math.cos(angle), y: center.y + radius * Math.sin(angle) };
  });
}

/**
 * Partition groups from where the user dragged the nodes: nodes closer than `linkDistance`
 * (directly or through a chain of such nodes) are in one group. One group means healed.
 */
export function groupsByDistance(points: readonly Point[], linkDistance: number): number[][] {
  const group = points.map((_, i) => i);
  const find = (i: number): number => {
    let r = i;
    while (group[r] !== r) r = group[r]!;
    return r;
  };
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const a = points[i]!;
      const b = points[j]!;
      if (Math.hypot(a.x - b.x, a.y - b.y) <= linkDistance) group[find(i)] = find(j);
    }
  }
  const byRoot = new Map<number, number[]>();
  points.forEach((_, i) => {
    const root = find(i);
    const members = byRoot.get(root) ?? [];
    members.push(i);
    byRoot.set(root, members);
  });
  return [...byRoot.values()];
}
