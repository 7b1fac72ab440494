import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from './rng.ts';

describe('Rng (xoshiro128**)', () => {
  it('matches the reference generator for state {1,2,3,4}', () => {
    const rng = Rng.fromState([1, 2, 3, 4]);
    // Reference values from the published xoshiro128** algorithm.
    expect([rng.nextU32(), rng.nextU32(), rng.nextU32()]).toEqual([11520, 0, 5927040]);
  });

  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = Rng.fromSeed(42);
    const b = Rng.fromSeed(42);
    const c = Rng.fromSeed(43);
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(sa);
  });

  it('continues exactly from a saved state', () => {
    const a = Rng.fromSeed(7);
    a.next();
    const copy = Rng.fromState(a.state());
    expect(Array.from({ length: 5 }, () => copy.next())).toEqual(
      Array.from({ length: 5 }, () => a.next()),
    );
  });

  it('forks reproducibly into streams that differ from the parent', () => {
    const p1 = Rng.fromSeed(9);
    const p2 = Rng.fromSeed(9);
    const f1 = p1.fork();
    const f2 = p2.fork();
    expect(f1.state()).toEqual(f2.state());
    expect(f1.nextU32()).not.toEqual(p1.nextU32());
  });

  it('keeps int(n) and range inside their bounds', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 2 ** 32 }), (seed, n) => {
        const rng = Rng.fromSeed(seed);
        for (let i = 0; i < 20; i++) {
          const x = rng.int(n);
          if (!(Number.isInteger(x) && x >= 0 && x < n)) return false;
          const f = rng.next();
          if (!(f >= 0 && f < 1)) return false;
        }
        return true;
      }),
    );
  });

  it('is roughly uniform', () => {
    const rng = Rng.fromSeed(1);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) buckets[rng.int(10)]! += 1;
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(500);
  });

  it('rejects seeds that are not safe non-negative integers', () => {
    expect(() => Rng.fromSeed(-1)).toThrow(/seed/);
    expect(() => Rng.fromSeed(1.5)).toThrow(/seed/);
    expect(() => Rng.fromState([0, 0, 0, 0])).toThrow(/all zero/);
  });
});
