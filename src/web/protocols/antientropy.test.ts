import { describe, expect, it } from 'vitest';
import { sameSummary } from '../../gossip/antientropy/merkle.ts';
import {
  merklePlayground,
  scuttlePlayground,
  WatchedMerkle,
  type WatchedScuttle,
} from './antientropy.ts';

function merkleCores(pg: ReturnType<typeof merklePlayground>): WatchedMerkle[] {
  return pg.members.flatMap((id) => {
    const c = pg.core(id);
    return c instanceof WatchedMerkle ? [c] : [];
  });
}

describe('Playground with anti-entropy', () => {
  it('Merkle: two replicas converge, and a repair after a few writes descends only into differing ranges', () => {
    const pg = merklePlayground(3, 1000);
    for (let i = 0; i < 60; i++) pg.clientRequest(`k${i}=v${i}`, 1);
    pg.runUntil(4000);
    const [a, b] = merkleCores(pg);
    expect(a!.node.tree.size).toBe(60);
    expect(sameSummary(a!.node.tree.rootSummary(), b!.node.tree.rootSummary())).toBe(true);
    const from = a!.sends.length + b!.sends.length;
    for (let i = 0; i < 2; i++) pg.clientRequest(`k${i}=changed`, 2);
    pg.runUntil(pg.now + 2000);
    expect(sameSummary(a!.node.tree.rootSummary(), b!.node.tree.rootSummary())).toBe(true);
    const sends = [...a!.sends, ...b!.sends].slice(0);
    expect(sends.length).toBeGreaterThan(from);
    const values = sends.filter((s) => s.type === 'values').reduce((n, s) => n + s.entries, 0);
    expect(values).toBeGreaterThanOrEqual(2);
  });

  it("Scuttlebutt: every node learns every owner's latest version", () => {
    const pg = scuttlePlayground(5, 5, 4, 200);
    for (let i = 0; i < 20; i++) pg.clientRequest(`k${i % 4}=v${i}`, (i % 5) + 1);
    pg.runUntil(8000);
    const cores = pg.members.map((id) => pg.core(id) as WatchedScuttle);
    const owners = cores.map((c) => c.node.digest().find(([o]) => o === c.id)?.[1] ?? 0);
    for (const c of cores) {
      for (const [o, v] of c.node.digest()) expect(v).toBe(owners[o - 1]);
    }
    expect(owners.every((v) => v >= 4)).toBe(true);
  });
});
