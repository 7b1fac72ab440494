import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../kernel/envelope.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { Rng } from '../../kernel/rng.ts';
import { adaptRate, FLOW_DEFAULTS } from './flow.ts';
import { utf8 } from './hash.ts';
import {
  applyScuttlePersist,
  type Delta,
  initialScuttleDurable,
  isPrecise,
  SCUTTLE_DEFAULTS,
  SCUTTLE_ORDERINGS,
  type ScuttleConfig,
  type ScuttleDurable,
  type ScuttleMsg,
  ScuttleNode,
  type ScuttleOrdering,
  selectDeltas,
  selectPrecise,
} from './scuttlebutt.ts';

function deltas(owner: NodeId, n: number): Delta[] {
  return Array.from({ length: n }, (_, i) => ({
    owner,
    key: `k${i}`,
    value: utf8('v'),
    version: i + 1,
    at: i,
  }));
}

describe('selectDeltas (paper section 3.2 orderings)', () => {
  it('scuttle-depth sends the most outdated owner first, as far as the mtu allows', () => {
    const r = selectDeltas(
      [deltas(1, 3), deltas(2, 8), deltas(3, 1)],
      10,
      'scuttle-depth',
      Rng.fromSeed(1),
    );
    expect(r.deltas.map((d) => d.owner)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 1, 1]);
    expect(r.cut).toBe(true);
  });

  it('scuttle-breadth takes one delta per owner per turn', () => {
    const r = selectDeltas(
      [deltas(1, 3), deltas(2, 8), deltas(3, 1)],
      6,
      'scuttle-breadth',
      Rng.fromSeed(1),
    );
    const byOwner = (o: number) => r.deltas.filter((d) => d.owner === o).length;
    expect(byOwner(3)).toBe(1);
    expect(Math.abs(byOwner(1) - byOwner(2))).toBeLessThanOrEqual(1);
    expect(r.deltas).toHaveLength(6);
  });

  it('either ordering sends at most mtu deltas, each owner a prefix in version order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 20 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom<ScuttleOrdering>('scuttle-depth', 'scuttle-breadth'),
        fc.nat(),
        (sizes, mtu, ordering, seed) => {
          const lists = sizes.map((n, i) => deltas(i + 1, n));
          const r = selectDeltas(lists, mtu, ordering, Rng.fromSeed(seed));
          const total = sizes.reduce((a, b) => a + b, 0);
          expect(r.deltas.length).toBe(Math.min(mtu, total));
          expect(r.cut).toBe(total > mtu);
          for (const [i] of sizes.entries()) {
            const vs = r.deltas.filter((d) => d.owner === i + 1).map((d) => d.version);
            expect(vs).toEqual(vs.map((_, j) => j + 1));
          }
        },
      ),
    );
  });
});

interface Sim {
  nodes: Map<NodeId, ScuttleNode>;
  durable: Map<NodeId, ScuttleDurable>;
  inFlight: Envelope<ScuttleMsg>[];
  /** Every version each owner's writes got, in order (across restarts). */
  writes: Map<NodeId, { key: string; version: number }[]>;
}

function cfg(id: NodeId, ids: NodeId[], over: Partial<ScuttleConfig>): ScuttleConfig {
  return { ...SCUTTLE_DEFAULTS, id, members: ids, ...over };
}

function makeSim(n: number, over: Partial<ScuttleConfig>): Sim {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const sim: Sim = { nodes: new Map(), durable: new Map(), inFlight: [], writes: new Map() };
  for (const id of ids) {
    sim.durable.set(id, initialScuttleDurable());
    sim.nodes.set(id, new ScuttleNode(cfg(id, ids, over), Rng.fromSeed(id)));
    sim.writes.set(id, []);
  }
  return sim;
}

function pump(sim: Sim): void {
  for (const node of sim.nodes.values()) {
    for (;;) {
      const rd = node.ready();
      if (rd === undefined) break;
      let d = sim.durable.get(node.id) as ScuttleDurable;
      for (const p of rd.persist) d = applyScuttlePersist(d, p);
      sim.durable.set(node.id, d);
      for (const m of rd.messages) sim.inFlight.push({ from: node.id, to: m.to, msg: m.msg });
      for (const r of rd.replies) {
        if (r.reply.type === 'ok')
          sim.writes.get(node.id)?.push({ key: r.reply.key, version: r.reply.version });
      }
      node.advance();
    }
  }
}

/**
 * No gaps: a holder whose digest covers owner@v holds, for every key of that owner, the
 * owner's latest write of it at or below v (or something newer) — unless the owner has since
 * rewritten the key above v, in which case the older write may already be gone everywhere
 * (the sender only keeps a key's latest version) and the holder gets the newer one later.
 */
function checkNoGaps(sim: Sim): void {
  for (const holder of sim.nodes.values()) {
    for (const [owner, upTo] of holder.digest()) {
      const latest = new Map<string, number>();
      const superseded = new Set<string>();
      for (const w of sim.writes.get(owner) ?? []) {
        if (w.version > upTo) superseded.add(w.key);
        else latest.set(w.key, Math.max(latest.get(w.key) ?? 0, w.version));
      }
      for (const [key, version] of latest) {
        if (superseded.has(key)) continue;
        const held = holder.get(owner, key);
        expect(
          held,
          `node ${holder.id} covers ${owner}@${upTo} but lacks ${key}@${version}`,
        ).toBeDefined();
        expect((held as Delta).version).toBeGreaterThanOrEqual(version);
      }
    }
  }
}

function checkMonotonic(sim: Sim): void {
  for (const ws of sim.writes.values()) {
    for (let i = 1; i < ws.length; i++) {
      expect((ws[i] as { version: number }).version).toBeGreaterThan(
        (ws[i - 1] as { version: number }).version,
      );
    }
  }
}

describe('ScuttleNode', () => {
  it('no gaps per (holder, owner) and no version reused, under loss, duplication, reordering and restarts', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.integer({ min: 2, max: 5 }),
        fc.constantFrom(...SCUTTLE_ORDERINGS),
        (seed, n, ordering) => {
          const rng = Rng.fromSeed(seed);
          const ids = Array.from({ length: n }, (_, i) => i + 1);
          const over = {
            mtuDeltas: 3,
            versionBlock: 4,
            rateInitialPerSecond: 1_000,
            burstUpdates: 1_000,
            ordering,
          };
          // The precise baselines make no gap promise; they must still converge.
          const gapFree = !isPrecise(ordering);
          const sim = makeSim(n, over);
          let now = 1_000;
          for (let step = 0; step < 300; step++) {
            now += 50;
            const id = rng.pick(ids);
            const node = sim.nodes.get(id) as ScuttleNode;
            const r = rng.int(10);
            if (r < 4)
              node.request(now, 1, { type: 'put', key: `k${rng.int(6)}`, value: utf8(`${step}`) });
            else if (r < 6) node.tick(now + 1_000);
            else if (r < 9 && sim.inFlight.length > 0) {
              const i = rng.int(sim.inFlight.length);
              const env = sim.inFlight[i] as Envelope<ScuttleMsg>;
              if (!rng.chance(0.3)) sim.inFlight.splice(i, 1); // else: duplicated later
              if (!rng.chance(0.1)) sim.nodes.get(env.to)?.receive(now, env.from, env.msg);
            } else if (r === 9) {
              // Crash: unpersisted output is lost; soft state about others too.
              node.ready();
              sim.nodes.set(
                id,
                new ScuttleNode(cfg(id, ids, over), Rng.fromSeed(step), sim.durable.get(id)),
              );
            }
            pump(sim);
            if (gapFree) checkNoGaps(sim);
            checkMonotonic(sim);
          }
          // Heal: lossless gossip until every digest is equal.
          for (let round = 0; round < 40; round++) {
            now += 1_000;
            for (const node of sim.nodes.values()) node.tick(now);
            pump(sim);
            while (sim.inFlight.length > 0) {
              const env = sim.inFlight.shift() as Envelope<ScuttleMsg>;
              sim.nodes.get(env.to)?.receive(now, env.from, env.msg);
              pump(sim);
            }
          }
          if (gapFree) checkNoGaps(sim);
          const tables = [...sim.nodes.values()].map((x) =>
            JSON.stringify(
              ids.flatMap((o) =>
                Array.from({ length: 6 }, (_, k) => x.get(o, `k${k}`)?.version ?? 0),
              ),
            ),
          );
          expect(tables).toEqual(tables.map(() => tables[0]));
          const digests = [...sim.nodes.values()].map((x) => JSON.stringify(x.digest()));
          expect(digests).toEqual(digests.map(() => digests[0]));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('refuses a write above its rate as rate-limited with a retry-after that works', () => {
    const node = new ScuttleNode(
      cfg(1, [1, 2], { rateInitialPerSecond: 2, burstUpdates: 1 }),
      Rng.fromSeed(1),
    );
    node.request(1_000, 1, { type: 'put', key: 'a', value: utf8('1') });
    node.request(1_000, 1, { type: 'put', key: 'a', value: utf8('2') });
    const rd = node.ready();
    const replies = rd?.replies.map((r) => r.reply) ?? [];
    node.advance();
    expect(replies[0]).toMatchObject({ type: 'ok' });
    expect(replies[1]).toMatchObject({
      type: 'refused',
      refusal: { type: 'rate-limited', retryAfterMs: 500 },
    });
    node.request(1_500, 1, { type: 'put', key: 'a', value: utf8('3') });
    expect(node.ready()?.replies[0]?.reply).toMatchObject({ type: 'ok', version: 2 });
  });

  it('AIMD: on overload only the larger rate decreases; otherwise rates grow toward desired', () => {
    const c = FLOW_DEFAULTS;
    expect(adaptRate({ rate: 4, desired: 10 }, { rate: 2, desired: 10 }, true, c)).toBe(3);
    expect(adaptRate({ rate: 2, desired: 10 }, { rate: 4, desired: 10 }, true, c)).toBe(2);
    expect(adaptRate({ rate: 2, desired: 10 }, { rate: 4, desired: 10 }, false, c)).toBeCloseTo(
      2.1,
    );
    expect(adaptRate({ rate: 2, desired: 2 }, { rate: 4, desired: 10 }, false, c)).toBe(2);
  });

  it('flow control: nodes wanting more than gossip carries settle on fair rates and bounded backlogs', () => {
    const n = 8;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const sim = makeSim(n, { mtuDeltas: 10, rateInitialPerSecond: 5 });
    const rng = Rng.fromSeed(3);
    let now = 1_000;
    const backlogs: number[] = [];
    for (let second = 0; second < 300; second++) {
      // Every node tries 20 writes a second: far above what 8 x 10 deltas/s can spread.
      for (let k = 0; k < 20; k++) {
        for (const id of ids) {
          sim.nodes
            .get(id)
            ?.request(now + k * 50, 1, { type: 'put', key: `k${rng.int(64)}`, value: utf8('x') });
        }
      }
      now += 1_000;
      for (const node of sim.nodes.values()) node.tick(now);
      pump(sim);
      while (sim.inFlight.length > 0) {
        const env = sim.inFlight.shift() as Envelope<ScuttleMsg>;
        sim.nodes.get(env.to)?.receive(now, env.from, env.msg);
        pump(sim);
      }
      if (second >= 200) {
        for (const node of sim.nodes.values()) backlogs.push(Math.max(0, ...node.backlog.values()));
      }
    }
    const rates = [...sim.nodes.values()].map((x) => x.ratePerSecond);
    const sum = rates.reduce((a, b) => a + b, 0);
    // What gossip carries: n gossips/s x 2 delta messages x mtu, each update needing n - 1 receipts.
    expect(sum).toBeLessThan(((n * 2 * 10) / (n - 1)) * 2);
    expect(Math.max(...rates) / Math.min(...rates)).toBeLessThan(3);
    expect(Math.max(...backlogs)).toBeLessThan(64 * n);
    checkNoGaps(sim);
  });

  it('drops and counts malformed messages and out-of-order deltas, storing nothing', () => {
    const node = new ScuttleNode(cfg(1, [1, 2], {}), Rng.fromSeed(1));
    const rates = { rate: 1, desired: 1 };
    const d = (version: number): Delta => ({
      owner: 2,
      key: `k${version}`,
      value: utf8('v'),
      version,
      at: 0,
    });
    const junk: unknown[] = [
      null,
      { type: 'digest', digest: 'x', rates },
      { type: 'deltas', deltas: [d(2), d(1)], base: [], digest: undefined, rates, cut: false },
      { type: 'deltas', deltas: [d(1)], base: [[2, 1]], digest: undefined, rates, cut: false },
      { type: 'what', digest: [], rates },
    ];
    for (const m of junk) node.receive(1_000, 2, m as ScuttleMsg);
    node.receive(1_000, 7, { type: 'digest', digest: [], keys: undefined, rates });
    expect(Object.fromEntries(node.dropped)).toEqual({ malformed: 5, 'unknown-peer': 1 });
    expect(node.digest()).toEqual([[1, 0]]);
  });

  it('precise-oldest sends the oldest newer writes first, precise-newest the newest', () => {
    const store = new Map(deltas(2, 5).map((d) => [d.key, d]));
    const theirs = [[2, 'k1', 2] as const];
    const oldest = selectPrecise([store], theirs, 2, 'precise-oldest');
    const newest = selectPrecise([store], theirs, 2, 'precise-newest');
    expect(oldest.deltas.map((d) => d.key)).toEqual(['k0', 'k2']);
    expect(newest.deltas.map((d) => d.key)).toEqual(['k4', 'k3']);
    expect(oldest.backlog).toBe(2);
  });
});
