/**
 * How a transport turns a protocol's messages into bytes. The default is MessagePack
 * (msgpackr, see ../msgpack.ts) with 64-bit integers as bigint, which round-trips: null, booleans, numbers
 * (integers exactly up to 2^53), strings, Uint8Array (any ArrayBufferView decodes as
 * Uint8Array), arrays, plain objects, and bigint in the int64/uint64 range (larger bigints
 * are NOT supported). `undefined` decodes as null, so optional fields should be omitted,
 * not set to undefined; Maps, Sets and class instances are not supported.
 *
 * decode runs on bytes from an authenticated peer but must still reject malformed input by
 * throwing; the transport then closes that connection. Checking that the decoded value has
 * the protocol's shape is the protocol's job (its receive step treats it as untrusted).
 */
import { wirePacker } from '../msgpack.ts';

export interface Codec<M> {
  encode(msg: M): Uint8Array;
  decode(bytes: Uint8Array): M;
}

export function msgpackCodec<M>(): Codec<M> {
  return {
    encode: (msg) => wirePacker.pack(msg),
    decode: (bytes) => wirePacker.unpack(bytes) as M,
  };
}
