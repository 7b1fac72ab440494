import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import type { ScheduledAction } from './nemesis.ts';
import type { ClusterView } from './protocol.ts';
import { runSimulation } from './run.ts';
import {
  type ProbeCore,
  type ProbeSettings,
  type ProbeTypes,
  probeProtocol,
} from './testing/probe.ts';

interface Rec {
  t: number;
  type: string;
  [k: string]: unknown;
}

const settings: ProbeSettings = { periodMs: 10, batchSize: 5, durationMs: 1000 };

/** Runs the probe with a scenario; returns the parsed trace and a live view of the cluster. */
function probe(seed: number, scenario: ScheduledAction[], extra: object = {}) {
  const lines: string[] = [];
  let view: ClusterView<ProbeTypes, number[]> | undefined;
  const base = probeProtocol(settings);
  const protocol = {
    ...base,
    createMonitor(v: ClusterView<ProbeTypes, number[]>) {
      view = v;
      return base.createMonitor(v);
    },
  };
  const result = runSimulation(protocol, {
    seed,
    scenario,
    clients: 0,
    trace: (l) => lines.push(l),
    ...extra,
  });
  const records = lines.map((l) => JSON.parse(l) as Rec);
  const coreOf = (id: NodeId) => view!.core(id) as ProbeCore;
  return { result, records, coreOf, lines };
}

describe('Simulator: crash semantics', () => {
  // fsync takes 5..9ms of every 10ms period, so most crashes land mid-write.
  const slowDisk = { fsyncMinMs: 5, fsyncMaxMs: 9 };
  const crashes: ScheduledAction[] = [];
  for (let k = 1; k <= 8; k++) {
    crashes.push({ atMs: 100 * k + 3, action: { type: 'crash', node: 2 } });
    crashes.push({ atMs: 100 * k + 40, action: { type: 'restart', node: 2 } });
  }

  it('keeps exactly the acknowledged writes plus a torn prefix of the in-flight batch', () => {
    const kept: number[] = [];
    for (let seed = 1; seed <= 12; seed++) {
      const { result, records } = probe(seed, crashes, slowDisk);
      // The monitor checked throughout that nothing was acted on before it was durable.
      expect(result.verdict, result.message).toBe('pass');
      let onDisk = 0;
      for (const r of records) {
        if (r.type === 'persist' && r.node === 2) onDisk += r.items as number;
        if (r.type === 'torn' && r.node === 2) {
          expect(r.of).toBe(settings.batchSize);
          kept.push(r.kept as number);
          onDisk += r.kept as number;
        }
        if (r.type === 'event' && r.node === 2 && String(r.event).startsWith('restart@')) {
          // The restarted core found exactly what the disk acknowledged, no more, no less.
          expect(r.event).toBe(`restart@${onDisk}`);
        }
      }
    }
    // The torn prefix is adversarial: nothing, everything, and partial batches all happen.
    expect(kept).toContain(0);
    expect(kept).toContain(settings.batchSize);
    expect(kept.some((k) => k > 0 && k < settings.batchSize)).toBe(true);
  });

  it('drops messages to a crashed node and restarts it with a fresh process', () => {
    const { records, coreOf } = probe(3, [
      { atMs: 200, action: { type: 'crash', node: 2 } },
      { atMs: 500, action: { type: 'restart', node: 2 } },
    ]);
    const downDrops = records.filter((r) => r.type === 'drop' && r.reason === 'down');
    expect(downDrops.length).toBeGreaterThan(20);
    expect(downDrops.every((r) => r.to === 'n2' && r.t >= 200 && r.t <= 520)).toBe(true);
    // The new process never saw pings from before its restart.
    expect(coreOf(2).received.length).toBeLessThan(coreOf(1).received.length);
    expect(coreOf(2).bootedAt).toBeGreaterThanOrEqual(500);
  });
});

describe('Simulator: pause', () => {
  it('holds a paused node’s input and timers, then runs them late, losing nothing', () => {
    const { result, records } = probe(5, [
      { atMs: 200, action: { type: 'pause', node: 2 } },
      { atMs: 400, action: { type: 'resume', node: 2 } },
    ]);
    expect(result.verdict).toBe('pass');
    const during = (r: Rec) => r.t > 200.5 && r.t < 400;
    expect(records.filter((r) => r.type === 'deliver' && r.to === 'n2' && during(r))).toEqual([]);
    expect(records.filter((r) => r.type === 'send' && r.from === 'n2' && during(r))).toEqual([]);
    // Pings sent to n2 during the pause arrive in one burst at the resume.
    const burst = records.filter((r) => r.type === 'deliver' && r.to === 'n2' && r.t === 400);
    expect(burst.length).toBeGreaterThanOrEqual(30);
    expect(records.filter((r) => r.type === 'drop')).toEqual([]);
  });
});

describe('Simulator: clocks', () => {
  it('runs timers by each node’s local clock: drift changes their rate, a jump skips ahead', () => {
    const { records, coreOf } = probe(7, [
      { atMs: 0, action: { type: 'clock', node: 2, jumpMs: 0, rate: 2 } },
      { atMs: 300, action: { type: 'clock', node: 3, jumpMs: 500, rate: 1 } },
    ]);
    const sends = (from: string) =>
      records.filter((r) => r.type === 'send' && r.from === from && r.to === 'n1').length;
    const ratio = sends('n2') / sends('n3');
    expect(ratio).toBeGreaterThan(1.8);
    expect(ratio).toBeLessThan(2.2);
    const times = coreOf(3).tickTimes;
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(0); // local time never runs back
    expect(Math.max(...gaps)).toBeGreaterThanOrEqual(500);
    // Node 2's local clock read about twice the global time at the end.
    expect(coreOf(2).tickTimes.at(-1)!).toBeGreaterThan(1900);
  });

  it('starts nodes at different local times when skew is enabled', () => {
    const { coreOf } = probe(9, [], { faults: ['skew'], intensity: 0, skewMaxMs: 50 });
    const boots = [1, 2, 3].map((id) => coreOf(id).bootedAt);
    expect(new Set(boots).size).toBe(3);
    for (const b of boots) expect(b).toBeLessThan(50);
    const plain = probe(9, []);
    expect([1, 2, 3].map((id) => plain.coreOf(id).bootedAt)).toEqual([0, 0, 0]);
  });
});

describe('Simulator: determinism and findings', () => {
  it('gives the same trace for the same seed and a different one for another seed', () => {
    const all = ['partition', 'crash', 'pause', 'loss', 'dup', 'reorder', 'skew', 'cut', 'clog'];
    const run = (seed: number) => probe(seed, [], { faults: all, intensity: 1 }).lines.join('\n');
    const a = run(11);
    expect(run(11)).toBe(a);
    expect(run(12)).not.toBe(a);
    expect(a).toContain('"type":"fault"');
  });

  it('reports a broken durability rule as a violation with a replay command', () => {
    const base = probeProtocol(settings);
    // A disk that silently drops every write: the monitor sees items acted on but absent.
    const lossyDisk = { ...base, applyPersist: (d: number[]) => d };
    const result = runSimulation(lossyDisk, { seed: 1, clients: 0 });
    expect(result.verdict).toBe('violation');
    expect(result.message).toMatch(/acted on item 1 with only 0 on disk/);
    expect(result.replay).toBe(
      'npx quorate sim probe --nodes 3 --seed 1 --ops 200 --clients 0 --faults none',
    );
  });
});

describe('Simulator: a core that throws', () => {
  it('turns the exception into a violation at the simulated time it happened', () => {
    const base = probeProtocol(settings);
    const fragile = {
      ...base,
      createCore: (init: Parameters<typeof base.createCore>[0]) => {
        const core = base.createCore(init);
        const receive = core.receive.bind(core);
        core.receive = (now, from, msg) => {
          if (init.id === 3 && msg.seq === 4) throw new TypeError('cannot read ping 4');
          receive(now, from, msg);
        };
        return core;
      },
    };
    const result = runSimulation(fragile, { seed: 1, clients: 0 });
    expect(result.verdict).toBe('violation');
    expect(result.message).toMatch(/^TypeError thrown at 4\d\.\d{3}ms: cannot read ping 4$/);
  });
});
