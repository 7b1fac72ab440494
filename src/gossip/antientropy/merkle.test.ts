import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmix32, murmur3, utf8 } from './hash.ts';
import { compareHlc, type Hlc, hlcNext, hlcObserve } from './hlc.ts';
import {
  type Entry,
  entryHash,
  inRange,
  MerkleTree,
  type Range,
  ROOT_RANGE,
  type StoredEntry,
  slotOf,
} from './merkle.ts';

function stored(key: string, wall: number, value = `v${wall}`, seq = 0): StoredEntry {
  const entry: Entry = { key, version: { wall, logical: 0, node: 1 }, value: utf8(value) };
  return { ...entry, slot: slotOf(key), hash: entryHash(entry), storedSeq: seq };
}

describe('hash', () => {
  it('is MurmurHash3 x86_32 (published test vectors)', () => {
    expect(murmur3(utf8(''), 0)).toBe(0);
    expect(murmur3(utf8(''), 1)).toBe(0x514e28b7);
    expect(murmur3(utf8('hello'), 0)).toBe(0x248bfa47);
    expect(murmur3(utf8('The quick brown fox jumps over the lazy dog'), 0)).toBe(0x2e4ff723);
  });

  it('fmix32 avalanches: one flipped input bit flips about half the output bits', () => {
    let flipped = 0;
    const trials = 2_000;
    for (let i = 0; i < trials; i++) {
      const bit = 1 << (i % 32);
      const d = (fmix32(i * 2654435761) ^ fmix32((i * 2654435761) ^ bit)) >>> 0;
      flipped += d.toString(2).replaceAll('0', '').length;
    }
    const mean = flipped / trials;
    expect(mean).toBeGreaterThan(15);
    expect(mean).toBeLessThan(17);
  });

  it('spreads sequential keys evenly over the 16 top-level ranges', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) {
      const s = slotOf(`key-${i}`) >>> 16;
      counts[s] = (counts[s] ?? 0) + 1;
    }
    for (const c of counts) expect(Math.abs(c - 1_000)).toBeLessThan(150);
  });
});

describe('hybrid logical clock', () => {
  it('moves forward when the physical clock stands still or steps back', () => {
    let c: Hlc = { wall: 0, logical: 0, node: 1 };
    const seen: Hlc[] = [];
    for (const now of [100, 100, 100, 50, 200, 199]) {
      c = hlcNext(c, now, 1);
      seen.push(c);
    }
    for (let i = 1; i < seen.length; i++) {
      expect(compareHlc(seen[i] as Hlc, seen[i - 1] as Hlc)).toBe(1);
    }
    expect(seen[3]).toEqual({ wall: 100, logical: 3, node: 1 });
  });

  it('observing a remote timestamp makes the next local one newer than it', () => {
    const remote: Hlc = { wall: 500, logical: 7, node: 2 };
    const c = hlcObserve({ wall: 100, logical: 0, node: 1 }, remote);
    expect(compareHlc(hlcNext(c, 120, 1), remote)).toBe(1);
  });
});

describe('MerkleTree', () => {
  it('splits leaves above leafKeysMax and keeps every sum exact', () => {
    const t = new MerkleTree({ leafKeysMax: 8 });
    for (let i = 0; i < 500; i++) t.set(stored(`k${i}`, i));
    t.checkFull();
    expect(t.leafCount).toBeGreaterThan(500 / 8);
    for (let i = 0; i < 500; i += 3) t.set(stored(`k${i}`, 1_000 + i));
    t.checkFull();
    for (let i = 0; i < 480; i++) t.delete(`k${i}`);
    t.checkFull();
    expect(t.leafCount).toBeLessThan(10);
    expect(t.size).toBe(20);
  });

  it('a root is the same whatever order the entries were written in (order-independent sums)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ maxLength: 6 }), { maxLength: 200 }),
        fc.integer(),
        (keys, seed) => {
          const a = new MerkleTree({ leafKeysMax: 4 });
          const b = new MerkleTree({ leafKeysMax: 16 });
          for (const [i, k] of keys.entries()) a.set(stored(k, i));
          const shuffled = [...keys].sort(
            (x, y) => murmur3(utf8(x), seed) - murmur3(utf8(y), seed),
          );
          for (const k of shuffled) b.set(stored(k, keys.indexOf(k)));
          expect(a.rootSummary()).toEqual(b.rootSummary());
          a.checkFull();
          b.checkFull();
        },
      ),
    );
  });

  it('a write changes the summary of exactly the ranges on its slot path', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ maxLength: 5 }), { minLength: 1, maxLength: 300 }),
        fc.nat(),
        (keys, pick) => {
          const t = new MerkleTree({ leafKeysMax: 8 });
          for (const [i, k] of keys.entries()) t.set(stored(k, i));
          const key = keys[pick % keys.length] as string;
          const ranges: Range[] = [];
          for (let bits = 0; bits <= 8; bits += 4) {
            for (let p = 0; p < 2 ** bits; p++) ranges.push({ bits, prefix: p });
          }
          const before = ranges.map((r) => t.summary(r));
          t.set(stored(key, 10_000));
          ranges.forEach((r, i) => {
            const changed = JSON.stringify(t.summary(r)) !== JSON.stringify(before[i]);
            expect(changed).toBe(inRange(slotOf(key), r));
          });
        },
      ),
    );
  });

  it('range summaries computed by scanning a leaf equal those of split nodes', () => {
    const coarse = new MerkleTree({ leafKeysMax: 100_000 });
    const fine = new MerkleTree({ leafKeysMax: 4 });
    for (let i = 0; i < 2_000; i++) {
      coarse.set(stored(`x${i}`, i));
      fine.set(stored(`x${i}`, i));
    }
    for (let p = 0; p < 256; p++) {
      const r = { bits: 8, prefix: p };
      expect(coarse.summary(r)).toEqual(fine.summary(r));
    }
    expect(coarse.summary(ROOT_RANGE)).toEqual(fine.rootSummary());
  });
});
