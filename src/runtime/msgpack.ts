/**
 * MessagePack through one Encoder and one Decoder per process and mode: the library's
 * `encode()`/`decode()` build a fresh instance (and a 2 KiB scratch buffer) on every call,
 * which was a visible share of a node's CPU per message. `pack` returns a copy, so callers
 * may keep it.
 *
 * `bigInt64` is the transport's mode (int64/uint64 round-trip as bigint); storage files
 * were always written without it, and keep their format.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';

export interface Packer {
  pack(value: unknown): Uint8Array;
  unpack(bytes: Uint8Array): unknown;
}

function packer(useBigInt64: boolean): Packer {
  const encoder = new Encoder({ useBigInt64 });
  const decoder = new Decoder({ useBigInt64 });
  return {
    pack: (value) => encoder.encode(value),
    unpack: (bytes) => decoder.decode(bytes),
  };
}

/** For peer messages. */
export const wirePacker: Packer = packer(true);
/** For WAL records, snapshot metadata and hard state. */
export const filePacker: Packer = packer(false);
