import { describe, expect, it } from 'vitest';
import { Rng } from '../kernel/rng.ts';
import { DROP_CUT, DROP_LOSS, DROP_PARTITION, Network } from './network.ts';

const flat = { baseMs: 2, jitterMeanMs: 0, tailChance: 0, tailMeanMs: 0 };

/** 4 nodes (0..3) and 1 client (4). */
function net(latency = flat, seed = 1): Network {
  return new Network(5, 4, latency, Rng.fromSeed(seed));
}

describe('Network', () => {
  it('delivers after the configured latency when healthy', () => {
    const n = net();
    expect(n.route(0, 1, 10)).toBe(12);
    expect(n.route(4, 3, 10)).toBe(12);
  });

  it('drops exactly the messages that cross a partition; clients reach every side', () => {
    const n = net();
    n.partition([[0, 1], [2]]); // node 3 is in no group: a group of its own
    expect(n.route(0, 1, 0)).toBeGreaterThan(0);
    expect(n.route(0, 2, 0)).toBe(DROP_PARTITION);
    expect(n.route(2, 0, 0)).toBe(DROP_PARTITION);
    expect(n.route(3, 2, 0)).toBe(DROP_PARTITION);
    expect(n.route(4, 2, 0)).toBeGreaterThan(0);
    expect(n.route(2, 4, 0)).toBeGreaterThan(0);
    n.heal();
    expect(n.route(0, 2, 0)).toBeGreaterThan(0);
  });

  it('cuts one direction of a link only', () => {
    const n = net();
    n.cut(0, 1);
    expect(n.route(0, 1, 0)).toBe(DROP_CUT);
    expect(n.route(1, 0, 0)).toBeGreaterThan(0);
    expect(n.connected(0, 1)).toBe(false);
    expect(n.connected(1, 0)).toBe(true);
  });

  it('clogs a single link with extra delay', () => {
    const n = net();
    n.clog(1, 2, 50);
    expect(n.route(1, 2, 0)).toBe(52);
    expect(n.route(2, 1, 0)).toBe(2);
  });

  it('loses node messages at the configured rate, and client links at theirs', () => {
    const n = net();
    n.faults.loss = 0.3;
    let lost = 0;
    for (let i = 0; i < 20_000; i++) if (n.route(0, 1, 0) === DROP_LOSS) lost++;
    expect(lost / 20_000).toBeGreaterThan(0.28);
    expect(lost / 20_000).toBeLessThan(0.32);
    for (let i = 0; i < 1000; i++) expect(n.route(4, 1, 0)).toBeGreaterThan(0);
    n.clientLoss = 0.5;
    let clientLost = 0;
    for (let i = 0; i < 10_000; i++) if (n.route(4, 1, 0) === DROP_LOSS) clientLost++;
    expect(clientLost / 10_000).toBeGreaterThan(0.47);
    expect(clientLost / 10_000).toBeLessThan(0.53);
  });

  it('duplicates at the configured rate', () => {
    const n = net();
    expect(n.duplicate()).toBe(false);
    n.faults.duplicate = 0.2;
    let dups = 0;
    for (let i = 0; i < 20_000; i++) if (n.duplicate()) dups++;
    expect(dups / 20_000).toBeGreaterThan(0.18);
    expect(dups / 20_000).toBeLessThan(0.22);
  });

  it('reorders: constant latency keeps send order, the reorder fault breaks it', () => {
    const inversions = (n: Network) => {
      let count = 0;
      let last = 0;
      for (let t = 0; t < 1000; t++) {
        const at = n.route(0, 1, t * 0.1);
        if (at < last) count++;
        last = Math.max(last, at);
      }
      return count;
    };
    const steady = net();
    expect(inversions(steady)).toBe(0);
    const shaken = net();
    shaken.faults.reorder = 0.5;
    shaken.faults.reorderMaxMs = 20;
    expect(inversions(shaken)).toBeGreaterThan(100);
  });

  it('draws latency from base plus an exponential jitter and a rare tail', () => {
    const n = net({ baseMs: 1, jitterMeanMs: 2, tailChance: 0.05, tailMeanMs: 100 });
    const samples = Array.from({ length: 20_000 }, () => n.route(0, 1, 0));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(1);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    // 1 + 2 + 0.05 * 100 = 8
    expect(mean).toBeGreaterThan(7);
    expect(mean).toBeLessThan(9);
  });
});
