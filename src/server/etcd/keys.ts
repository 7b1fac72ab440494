import type { Bytes } from '../../kv/bytes.ts';
import type { KvEntry } from '../../kv/machine.ts';
import { etcdErrors, unimplemented } from './errors.ts';
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

/** What a key and range_end select, in terms today's reads can serve. */
export type Span =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'prefix'; readonly prefix: string };

/** The first key after every key that starts with `prefix` (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

const ZERO = Buffer.from([0]);

export function spanOf(key: Buffer, rangeEnd: Buffer): Span {
  if (key.length === 0 && rangeEnd.length === 0) throw etcdErrors.emptyKey();
  if (rangeEnd.length === 0) return { kind: 'key', key: storeBytesOf(key) };
  // key "\0" with range_end "\0" is every key (clientv3's WithPrefix of "" and WithFromKey).
  if (rangeEnd.equals(ZERO) && (key.length === 0 || key.equals(ZERO))) {
    return { kind: 'prefix', prefix: '' };
  }
  if (rangeEnd.equals(prefixEnd(key))) return { kind: 'prefix', prefix: storeBytesOf(key) };
  throw unimplemented(
    'a range other than one key or one prefix (range_end = the prefix with its last byte plus one)',
  );
}

/** Whether `key` lies in `span`. */
export function inSpan(span: Span, key: string): boolean {
  return span.kind === 'key' ? key === span.key : key.startsWith(span.prefix);
}

/**
 * An entry as etcd's KeyValue. create_revision is known only while the key's last write
 * created it (version 1); otherwise the state machine does not keep it yet and it is 0.
 */
export function keyValueOf(entry: KvEntry, keysOnly = false): KeyValue {
  return {
    key: wireBytesOf(entry.key),
    create_revision: entry.version === 1 ? entry.modRevision : 0,
    mod_revision: entry.modRevision,
    version: entry.version,
    value: keysOnly ? Buffer.alloc(0) : wireBytesOf(entry.value),
    lease: 0,
  };
}

/** Byte order of keys, etcd's order (JS string order differs above U+FFFF). */
export function compareKeys(a: KvEntry, b: KvEntry): number {
  return Buffer.compare(wireBytesOf(a.key), wireBytesOf(b.key));
}
