import type { Bytes } from '../../kv/bytes.ts';
import type { KeyRange, KeyValue as StoreKeyValue } from '../../kv/ops.ts';
import type { KeyValue } from './types.ts';

/**
 * Between etcd's byte keys and values and the state machine's byte strings
 * (src/kv/bytes.ts): one code unit per byte, both ways, so any bytes are carried exactly and
 * string prefixes and order are byte prefixes and order.
 */
export function storeBytesOf(bytes: Buffer): Bytes {
  // latin1 is exactly one code unit per byte, both ways.
  return bytes.toString('latin1');
}

export function wireBytesOf(text: Bytes): Buffer {
  return Buffer.from(text, 'latin1');
}

/**
 * etcd's key and range_end as the store's key range (the same convention: no range_end is
 * one key, "\0" every key from `key` on, otherwise [key, range_end)).
 */
export function keyRangeOf(key: Buffer, rangeEnd: Buffer | undefined): KeyRange {
  const end = rangeEnd === undefined || rangeEnd.length === 0 ? '' : storeBytesOf(rangeEnd);
  return end === '' ? { key: storeBytesOf(key) } : { key: storeBytesOf(key), rangeEnd: end };
}

/** A store KeyValue as etcd's mvccpb.KeyValue; `keysOnly` leaves the value out. */
export function wireKvOf(kv: StoreKeyValue, keysOnly = false): KeyValue {
  return {
    key: wireBytesOf(kv.key),
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: keysOnly ? Buffer.alloc(0) : wireBytesOf(kv.value),
    lease: kv.lease,
  };
}
