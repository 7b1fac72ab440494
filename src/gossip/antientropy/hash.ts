/**
 * A small pure 64-bit hash for anti-entropy: two MurmurHash3 x86_32 lanes (Appleby's
 * algorithm, written here from its description) run over the same bytes with different
 * seeds, giving a `[hi, lo]` pair of uint32 words.
 *
 * Why this and not FNV-1a: FNV-1a's last byte only reaches the low bits through one
 * multiply, so keys differing in their last character cluster in the high bits that pick a
 * tree slot. Murmur3's finalizer (`fmix32`) avalanches every input bit over the word.
 *
 * Collision behaviour: for non-adversarial keys the pair behaves as a uniform 64-bit value,
 * so two different entries collide with probability about 2^-64, and a sum of n entry
 * hashes (see `merkle.ts`) differs from another set's sum except with probability about
 * 2^-64 per comparison, whatever n is. It is NOT collision resistant against an adversary
 * who picks keys (seed-independent Murmur3 multicollisions are known): anti-entropy peers
 * are authenticated members, and a forged collision can only hide a difference from repair,
 * never corrupt a value.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The two lanes' seeds: arbitrary odd constants, fixed forever (they are part of the wire format). */
export const HASH_SEED_HI = 0x9747b28c;
export const HASH_SEED_LO = 0x3c6ef372;

export type Hash64 = readonly [hi: number, lo: number];

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** Murmur3's finalizer: every input bit affects every output bit with probability ~1/2. */
export function fmix32(h0: number): number {
  let h = h0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of `bytes` with `seed`, as an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed: number): number {
  let h = seed | 0;
  const n = bytes.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k =
      (bytes[i] as number) |
      ((bytes[i + 1] as number) << 8) |
      ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    k = Math.imul(k, C1);
    k = rotl32(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
    h = rotl32(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const tail = n - blocks;
  if (tail === 3) k ^= (bytes[blocks + 2] as number) << 16;
  if (tail >= 2) k ^= (bytes[blocks + 1] as number) << 8;
  if (tail >= 1) {
    k ^= bytes[blocks] as number;
    k = Math.imul(k, C1);
    k = rotl32(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= n;
  return fmix32(h);
}

/** The 64-bit hash of `bytes` as two independent-seeded Murmur3 lanes. */
export function hash64(bytes: Uint8Array): Hash64 {
  return [murmur3(bytes, HASH_SEED_HI), murmur3(bytes, HASH_SEED_LO)];
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a string (keys are strings; their byte length is what limits count). */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
