import { assert } from './assert.ts';

/**
 * The whole state of an `Rng`: four unsigned 32-bit words. Saving it and restoring it with
 * `Rng.fromState` continues the exact same sequence.
 */
export type RngState = readonly [number, number, number, number];

const TWO_POW_32 = 0x1_0000_0000;

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** splitmix32: spreads a seed's bits over a full word, used only for seeding. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Seeded pseudo-random numbers: xoshiro128** (Blackman & Vigna), 32-bit arithmetic so it is
 * exact and fast in JavaScript. Every source of randomness in a core or the simulator is an
 * `Rng` passed in as an argument, so a seed fixes a whole run. `fork()` derives an
 * independent stream, one per node, so adding a node does not shift the others' draws.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(state: RngState) {
    assert(
      state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32),
      'rng state words must be uint32',
    );
    assert(
      state.some((w) => w !== 0),
      'rng state must not be all zero',
    );
    [this.s0, this.s1, this.s2, this.s3] = state;
  }

  /** A generator for a seed in 0..2^53-1 (any safe non-negative integer). */
  static fromSeed(seed: number): Rng {
    assert(
      Number.isSafeInteger(seed) && seed >= 0,
      `seed must be a safe non-negative integer, got ${seed}`,
    );
    const mix = { s: (seed % TWO_POW_32) ^ (Math.floor(seed / TWO_POW_32) * 0x632be5ab) };
    return new Rng([splitmix32(mix), splitmix32(mix), splitmix32(mix), splitmix32(mix)]);
  }

  static fromState(state: RngState): Rng {
    return new Rng(state);
  }

  state(): RngState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /** The next uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67_108_864 + lo) / 9_007_199_254_740_992;
  }

  /** An integer in [0, n), without modulo bias. n must be in 1..2^32. */
  int(n: number): number {
    assert(
      Number.isInteger(n) && n >= 1 && n <= TWO_POW_32,
      `int(n) needs 1 <= n <= 2^32, got ${n}`,
    );
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** An integer in [lo, hi], both ends included. */
  range(lo: number, hi: number): number {
    assert(lo <= hi, `range(${lo}, ${hi}) is empty`);
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  /** Fisher-Yates, in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** Exponentially distributed with the given mean (for inter-arrival times). */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /**
   * A new generator whose stream is independent of this one's continuation. It consumes
   * five draws from this generator and re-mixes them, so forks are reproducible.
   */
  fork(): Rng {
    const mix = { s: this.nextU32() ^ 0x5bd1e995 };
    const words: [number, number, number, number] = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) words[i] = (splitmix32(mix) ^ this.nextU32()) >>> 0;
    if (words.every((w) => w === 0)) words[0] = 1;
    return new Rng(words);
  }
}
