/**
 * MessagePack for peer messages and storage records, through msgpackr: one reusable Packr
 * per mode (msgpackr encodes and decodes entries about 2-3 times faster than
 * @msgpack/msgpack did, and MessagePack was a tenth of a busy node's CPU). Both write
 * standard MessagePack, so files and peers from before the change read the same.
 *
 * Options keep the semantics callers rely on: plain MessagePack maps as objects (no msgpackr
 * records or shared structures), `undefined` written as nil (decodes as null), binary data
 * copied out of the input as Uint8Array (a frame's buffer is neither kept alive nor
 * aliased), and a value followed by stray bytes, or the never-used byte 0xc1 as the whole
 * value, rejected. `pack` returns a buffer callers may keep.
 *
 * `bigInt64` is the transport's mode (int64/uint64 round-trip as bigint); storage files
 * were always written without it, and keep their format.
 */
import { C1, Packr } from 'msgpackr';

export interface Packer {
  pack(value: unknown): Uint8Array;
  unpack(bytes: Uint8Array): unknown;
}

function packer(useBigInt64: boolean): Packer {
  const packr = new Packr({
    useRecords: false,
    mapsAsObjects: true,
    encodeUndefinedAsNil: true,
    copyBuffers: true,
    int64AsType: useBigInt64 ? 'bigint' : 'number',
  });
  return {
    pack: (value) => packr.pack(value),
    unpack: (bytes) => {
      // A plain Uint8Array view (not a Buffer): binary fields then decode as Uint8Array.
      const view = bytes.constructor === Uint8Array ? bytes : plainView(bytes);
      const value: unknown = packr.unpack(view);
      // msgpackr answers the never-used byte 0xc1 with a marker object instead of an error.
      if (value === C1) throw new RangeError('not MessagePack: the never-used byte 0xc1');
      return value;
    },
  };
}

function plainView(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** For peer messages. */
export const wirePacker: Packer = packer(true);
/** For WAL records, snapshot metadata and hard state. */
export const filePacker: Packer = packer(false);
