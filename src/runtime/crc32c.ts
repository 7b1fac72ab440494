/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum on every WAL record and
 * snapshot. Ours rather than a package because the WAL is core: a checksum bug there is data
 * loss, so it is small, tested against published vectors, and has no dependency to audit.
 * Slicing-by-8 tables: eight bytes per step, about 1 GB/s in V8, well above fsync rates.
 */
const POLY = 0x82f63b78;

const TABLES: readonly Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const base = tables[0] as Uint32Array;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    base[n] = c >>> 0;
  }
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1] as Uint32Array;
    const cur = tables[t] as Uint32Array;
    for (let n = 0; n < 256; n++) {
      const p = prev[n] as number;
      cur[n] = ((p >>> 8) ^ (base[p & 0xff] as number)) >>> 0;
    }
  }
  return tables;
})();

/**
 * Continues a CRC32C over `bytes`. Start with `crc32c(bytes)`; to checksum a stream, feed
 * each chunk with the previous result: `crc32c(b, crc32c(a))` equals `crc32c(a ++ b)`.
 */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let crc = ~previous >>> 0;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n % 8);
  while (i < end8) {
    const lo =
      (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>>
      0;
    crc =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[bytes[i + 4]!]! ^
      t2[bytes[i + 5]!]! ^
      t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < n) {
    crc = (crc >>> 8) ^ t0[(crc ^ bytes[i]!) & 0xff]!;
    i++;
  }
  return ~crc >>> 0;
}
