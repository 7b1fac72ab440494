import type { Bytes } from './bytes.ts';
import type { KvOp } from './machine.ts';
import type {
  Compare,
  KeyRange,
  KeyValue,
  RangeRequest,
  RequestOp,
  SortOrder,
  SortTarget,
} from './ops.ts';

/** Whether `key` lies in `range` (etcd's convention, see KeyRange). */
export function inRange(range: KeyRange, key: Bytes): boolean {
  const end = range.rangeEnd ?? '';
  if (end === '') return key === range.key;
  return key >= range.key && (end === '\0' || key < end);
}

/** The min/max mod and create revision filters of a range (0 = no bound). */
export function passesFilters(req: RangeRequest, kv: KeyValue): boolean {
  const minMod = req.minModRevision ?? 0;
  const maxMod = req.maxModRevision ?? 0;
  const minCreate = req.minCreateRevision ?? 0;
  const maxCreate = req.maxCreateRevision ?? 0;
  if (minMod > 0 && kv.modRevision < minMod) return false;
  if (maxMod > 0 && kv.modRevision > maxMod) return false;
  if (minCreate > 0 && kv.createRevision < minCreate) return false;
  if (maxCreate > 0 && kv.createRevision > maxCreate) return false;
  return true;
}

/**
 * etcd's sort rules (server/etcdserver/apply): results come in ascending key order, so
 * order `none` with target `key`, and `ascend` by key, leave them as they are; any other
 * target with order `none` sorts ascending. The sort is stable, so ties stay in key order.
 */
export function sortKvs(kvs: KeyValue[], order: SortOrder, target: SortTarget): KeyValue[] {
  const effective = target !== 'key' && order === 'none' ? 'ascend' : order;
  if (effective === 'none' || (target === 'key' && effective === 'ascend')) return kvs;
  if (target === 'key') return kvs.reverse();
  const field = (kv: KeyValue): number | Bytes => {
    switch (target) {
      case 'version':
        return kv.version;
      case 'create':
        return kv.createRevision;
      case 'mod':
        return kv.modRevision;
      case 'value':
        return kv.value;
    }
  };
  const sign = effective === 'ascend' ? 1 : -1;
  return kvs.sort((a, b) => {
    const x = field(a);
    const y = field(b);
    return x < y ? -sign : x > y ? sign : 0;
  });
}

const ZERO: KeyValue = {
  key: '',
  value: '',
  createRevision: 0,
  modRevision: 0,
  version: 0,
  lease: 0,
};

/**
 * One compare against the keys of its range (etcd's applyCompare): every key must satisfy
 * it; a range with no key compares the zero KeyValue, except a value compare, which fails.
 */
export function evaluateCompare(c: Compare, kvs: readonly KeyValue[]): boolean {
  if (kvs.length === 0) return c.target === 'value' ? false : holds(c, ZERO);
  return kvs.every((kv) => holds(c, kv));
}

function holds(c: Compare, kv: KeyValue): boolean {
  let order: number;
  switch (c.target) {
    case 'version':
      order = Math.sign(kv.version - c.version);
      break;
    case 'create':
      order = Math.sign(kv.createRevision - c.createRevision);
      break;
    case 'mod':
      order = Math.sign(kv.modRevision - c.modRevision);
      break;
    case 'lease':
      order = Math.sign(kv.lease - c.lease);
      break;
    case 'value':
      order = kv.value < c.value ? -1 : kv.value > c.value ? 1 : 0;
      break;
  }
  switch (c.result) {
    case 'equal':
      return order === 0;
    case 'notEqual':
      return order !== 0;
    case 'greater':
      return order > 0;
    case 'less':
      return order < 0;
  }
}

interface Writes {
  readonly puts: Set<Bytes>;
  readonly dels: KeyRange[];
}

/**
 * etcd's rule that a txn may not write a key twice (v3rpc `checkIntervals`): within one
 * level and everything nested in it, no put's key may be put again or lie in a delete range;
 * the success and failure branches of a nested txn exclude each other, so a key put in both
 * is fine. Overlapping deletes are allowed. Returns whether `ops` break it.
 */
export function hasDuplicateKey(ops: readonly RequestOp[]): boolean {
  return collectWrites(ops) === undefined;
}

function collectWrites(ops: readonly RequestOp[]): Writes | undefined {
  const dels: KeyRange[] = [];
  for (const op of ops) if (op.f === 'deleteRange') dels.push(op);
  const deleted = (key: Bytes) => dels.some((d) => inRange(d, key));
  const puts = new Set<Bytes>();
  for (const op of ops) {
    if (op.f !== 'txn') continue;
    const then = collectWrites(op.success);
    const otherwise = collectWrites(op.failure);
    if (then === undefined || otherwise === undefined) return undefined;
    for (const k of then.puts) {
      if (puts.has(k) || deleted(k)) return undefined;
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || deleted(k)) return undefined;
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (op.f !== 'put') continue;
    if (puts.has(op.key) || deleted(op.key)) return undefined;
    puts.add(op.key);
  }
  return { puts, dels };
}

/** Whether two key ranges share a key. */
export function rangesOverlap(a: KeyRange, b: KeyRange): boolean {
  const aEnd = a.rangeEnd ?? '';
  const bEnd = b.rangeEnd ?? '';
  if (aEnd === '') return inRange(b, a.key);
  if (bEnd === '') return inRange(a, b.key);
  return (bEnd === '\0' || a.key < bEnd) && (aEnd === '\0' || b.key < aEnd);
}

/** Every key range an op may write (both branches of a txn), for access rules. */
export function writeRanges(op: KvOp | RequestOp): KeyRange[] {
  switch (op.f) {
    case 'put':
    case 'delete':
    case 'cas':
    case 'casVersion':
      return [{ key: op.key }];
    case 'deleteRange':
      return [op];
    case 'txn':
      return [...op.success, ...op.failure].flatMap(writeRanges);
    case 'asUser':
      return writeRanges(op.op);
    default:
      return [];
  }
}
