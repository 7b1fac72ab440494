import { describe, expect, it } from 'vitest';
import { filePacker, wirePacker } from './msgpack.ts';

const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

describe('MessagePack packers', () => {
  it('read what the previous library (@msgpack/msgpack 3.1) wrote to WAL files and peers', () => {
    // A WAL entry record with a session above 2^32 (written as uint64) and UTF-8 text.
    const entry = hex(
      '84a5696e64657807a47465726d02a46b696e64a66e6f726d616ca46461746183a773657373696f6ecf' +
        '0000200000000001a373657103a26f7083a166a3707574a36b6579a16ba576616c7565a668c3a96c6c6f',
    );
    expect(filePacker.unpack(entry)).toEqual({
      index: 7,
      term: 2,
      kind: 'normal',
      data: { session: 2 ** 45 + 1, seq: 3, op: { f: 'put', key: 'k', value: 'héllo' } },
    });
    // A peer message with an int64 bigint, binary data and a null.
    const msg = hex(
      '84a474797065ad736e617073686f744368756e6ba3626967cf7fffffffffffffffa464617461c40200ffa36f7074c0',
    );
    expect(wirePacker.unpack(msg)).toEqual({
      type: 'snapshotChunk',
      big: 2n ** 63n - 1n,
      data: Uint8Array.of(0, 255),
      opt: null,
    });
  });

  it('decodes binary as a plain Uint8Array copy, and undefined as null', () => {
    const bytes = wirePacker.pack({ data: Uint8Array.of(1, 2, 3), gone: undefined });
    const out = wirePacker.unpack(Buffer.from(bytes)) as { data: Uint8Array; gone: unknown };
    expect(out.data.constructor).toBe(Uint8Array);
    expect(out.gone).toBeNull();
    bytes.fill(0);
    expect([...out.data]).toEqual([1, 2, 3]); // not a view into the input
  });

  it('keeps packed buffers intact across later packs', () => {
    const first = filePacker.pack({ a: 1, s: 'x' });
    const copy = Uint8Array.from(first);
    for (let i = 0; i < 2000; i++) filePacker.pack({ i, s: 'y'.repeat(i % 300) });
    expect([...first]).toEqual([...copy]);
  });

  it('rejects stray bytes after a value, a truncated value, and the never-used byte 0xc1', () => {
    expect(() => wirePacker.unpack(Uint8Array.of(0x01, 0x02))).toThrow();
    expect(() => wirePacker.unpack(Uint8Array.of(0xa5, 0x61))).toThrow();
    expect(() => wirePacker.unpack(Uint8Array.of(0xc1))).toThrow(/0xc1/);
  });
});
