import { describe, expect, it } from 'vitest';
import { Rng } from '../kernel/rng.ts';
import { type FaultAction, genericFaults, parseFaults, RandomNemesis } from './nemesis.ts';
import { runSimulation } from './run.ts';
import { type ProbeCore, probeProtocol } from './testing/probe.ts';

describe('parseFaults', () => {
  it('takes all, none, or a list in canonical order, and names unknown faults', () => {
    expect(parseFaults('all', ['poke'])).toEqual({ ok: true, faults: [...genericFaults, 'poke'] });
    expect(parseFaults('none', [])).toEqual({ ok: true, faults: [] });
    expect(parseFaults('crash,partition', [])).toEqual({
      ok: true,
      faults: ['partition', 'crash'],
    });
    const bad = parseFaults('crash,meteor', []);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/unknown fault 'meteor'/);
  });
});

describe('RandomNemesis', () => {
  const members = [1, 2, 3, 4, 5];
  const state = (down: Set<number>) => ({
    isUp: (n: number) => !down.has(n),
    isPaused: () => false,
    networkFaulty: () => true,
  });

  it('only produces actions of the enabled kinds, over valid nodes', () => {
    const nemesis = new RandomNemesis(members, ['crash', 'partition'], 0.8, Rng.fromSeed(3));
    const down = new Set<number>();
    const kinds = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const a: FaultAction = nemesis.next(state(down));
      kinds.add(a.type);
      if (a.type === 'crash') {
        expect(down.has(a.node)).toBe(false);
        down.add(a.node);
      }
      if (a.type === 'restart') {
        expect(down.has(a.node)).toBe(true);
        down.delete(a.node);
      }
      if (a.type === 'partition') {
        const all = a.groups.flat().sort();
        expect(all).toEqual(members);
        expect(a.groups.every((g) => g.length > 0)).toBe(true);
      }
    }
    expect([...kinds].sort()).toEqual(['crash', 'heal', 'partition', 'restart']);
  });

  it('strikes more often at higher intensity, and not at all at zero', () => {
    const mean = (x: number) => {
      const n = new RandomNemesis(members, ['loss'], x, Rng.fromSeed(1));
      let sum = 0;
      for (let i = 0; i < 2000; i++) sum += n.nextDelayMs();
      return sum / 2000;
    };
    expect(mean(1)).toBeLessThan(mean(0.2) / 3);
    expect(new RandomNemesis(members, ['loss'], 0, Rng.fromSeed(1)).active).toBe(false);
    expect(new RandomNemesis(members, [], 1, Rng.fromSeed(1)).active).toBe(false);
  });

  it('injects protocol-provided faults by name', () => {
    const lines: string[] = [];
    const settings = { periodMs: 10, batchSize: 1, durationMs: 500 };
    let poked = 0;
    const base = probeProtocol(settings);
    const result = runSimulation(
      {
        ...base,
        createMonitor: (view) => ({
          atEnd() {
            for (const m of view.members) poked += (view.core(m) as ProbeCore).requests.length;
            return undefined;
          },
        }),
      },
      { seed: 2, clients: 0, faults: ['poke'], intensity: 1, trace: (l) => lines.push(l) },
    );
    expect(result.verdict).toBe('pass');
    const faults = lines.filter((l) => l.includes('"type":"protocol","name":"poke"'));
    expect(faults.length).toBeGreaterThan(5);
    expect(poked).toBe(faults.length);
  });
});
