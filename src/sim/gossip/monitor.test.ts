import { describe, expect, it } from 'vitest';
import { GOSSIP_DEFAULTS } from '../../gossip/config.ts';
import { GossipNode } from '../../gossip/node.ts';
import type { GossipDurable, GossipTypes } from '../../gossip/types.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { Rng } from '../../kernel/rng.ts';
import { genericFaults } from '../nemesis.ts';
import type { ClusterView } from '../protocol.ts';
import { runSimulation } from '../run.ts';
import { GossipMonitor } from './monitor.ts';
import { ObservedGossip, WireLedger } from './observed.ts';
import { gossipSimProtocol, minorityConvergeMs } from './plugin.ts';

function drain(n: GossipNode): void {
  for (let rd = n.ready(); rd !== undefined; rd = n.ready()) n.advance();
}

/** A node that was a member knowing 1..3 alive, left, and was told to join again through `seeds`. */
function rejoiner(id: NodeId, seeds: NodeId[]): GossipNode {
  const n = new GossipNode(
    { ...GOSSIP_DEFAULTS, id, seeds: [], tags: '' },
    Rng.fromSeed(id),
    undefined,
    0,
  );
  const members = [1, 2, 3].map((m) => ({
    id: m,
    incarnation: 1,
    status: 'alive' as const,
    tags: '',
  }));
  const other = id === 1 ? 2 : 1;
  n.receive(0, other, {
    type: 'push-pull',
    reply: false,
    join: false,
    members,
    heads: [],
    events: [],
  });
  n.request(10, 0, { type: 'leave' });
  n.tick(10 + GOSSIP_DEFAULTS.leaveGraceMs);
  expect(n.currentMode).toBe('idle');
  n.request(5_000, 0, { type: 'join', seeds });
  drain(n);
  expect(n.currentMode).toBe('joining');
  return n;
}

/** Nodes 1..3; those in `up` run the given cores, the rest crashed for good. */
function viewOf(up: Map<NodeId, GossipNode>): ClusterView<GossipTypes, GossipDurable> {
  const ledger = new WireLedger(GOSSIP_DEFAULTS.packetBytesMax, 8);
  const cores = new Map([...up].map(([id, n]) => [id, new ObservedGossip(n, ledger)]));
  return {
    members: [1, 2, 3],
    now: () => 60_000,
    core: (id) => cores.get(id),
    durable: () => ({ incarnation: 1, eventSeq: 0 }),
    isUp: (id) => cores.has(id),
    isPaused: () => false,
    faults: ['crash'],
  };
}

describe('GossipMonitor end check', () => {
  it('exempts a lone joiner, whose table from before it left lists crashed nodes alive', () => {
    const n3 = rejoiner(3, [1, 2]);
    expect(n3.member(1)?.status).toBe('alive');
    const view = viewOf(new Map([[3, n3]]));
    const monitor = new GossipMonitor(view, new WireLedger(1_400, 8), 4);
    // Without the exemption: "n3 is still joining", or "n3 sees n1, which crashed, as alive".
    expect(monitor.atEnd(view)).toBeUndefined();
  });

  it('holds two live joiners to joining: they could have joined each other', () => {
    const view = viewOf(
      new Map([
        [2, rejoiner(2, [1, 3])],
        [3, rejoiner(3, [1, 2])],
      ]),
    );
    const monitor = new GossipMonitor(view, new WireLedger(1_400, 8), 4);
    expect(monitor.atEnd(view)).toMatch(/is still joining after healing/);
  });
});

describe('the convergence window when most nodes are gone', () => {
  it('is 118 s at n = 5 and 855 s at n = 50 with the defaults', () => {
    expect(minorityConvergeMs(GOSSIP_DEFAULTS, 5, 30_000)).toBe(118_000);
    expect(Math.round(minorityConvergeMs(GOSSIP_DEFAULTS, 50, 30_000) / 1_000)).toBe(855);
  });

  it('lets a lone survivor at full health score finish its suspicions (soak seed 8064); 30 s does not', () => {
    const opts = {
      seed: 8064,
      nodes: 5,
      ops: 200,
      clients: 5,
      faults: [...genericFaults, 'leave'],
    };
    const ok = gossipSimProtocol({ name: 'gossip', description: 'default windows' });
    expect(runSimulation(ok, opts).verdict).toBe('pass');
    const strict = gossipSimProtocol({
      name: 'gossip',
      description: '30 s for survivors too',
      workload: { minorityConvergeMs: 30_000 },
    });
    expect(runSimulation(strict, opts).message).toMatch(/not converged: n2 sees n\d.* as suspect/);
  });
});
