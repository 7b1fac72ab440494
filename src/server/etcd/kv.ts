import type * as store from '../../kv/ops.ts';
import { sortKvs } from '../../kv/range.ts';
import type { ReadConsistency } from '../engine.ts';
import {
  checkKeyLength,
  checkValueLength,
  type EtcdContext,
  headerOf,
  resultOf,
  writeOp,
} from './context.ts';
import { invalidArgument } from './errors.ts';
import { keyRangeOf, storeBytesOf, wireKvOf } from './keys.ts';
import type {
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
} from './types.ts';

/**
 * etcd's KV service (Range, Put, DeleteRange, Compact) as the state machine's etcd
 * operations (src/kv/ops.ts), which have etcd's semantics: revisions, past reads, filters,
 * sorting, prev_kv, ignore_value / ignore_lease and compaction are the store's, and its
 * refusals come back as etcd's errors (context.ts resultOf). This file only converts
 * between the wire and the store, and pages ranges larger than `rangeKeysMax`.
 */

const SORT_ORDERS: readonly store.SortOrder[] = ['none', 'ascend', 'descend'];
const SORT_TARGETS: readonly store.SortTarget[] = ['key', 'version', 'create', 'mod', 'value'];

/** The store's range request for a wire one, with only the fields that are set. */
export function rangeOpOf(req: RangeRequest): store.RangeRequest {
  if (req.limit < 0) throw invalidArgument('limit must not be negative');
  if (req.revision < 0) throw invalidArgument('revision must not be negative');
  const sortOrder = SORT_ORDERS[req.sort_order];
  const sortTarget = SORT_TARGETS[req.sort_target];
  if (sortOrder === undefined || sortTarget === undefined) {
    throw invalidArgument(`unknown sort order ${req.sort_order} or target ${req.sort_target}`);
  }
  const numbers = {
    limit: req.limit,
    revision: req.revision,
    minModRevision: req.min_mod_revision,
    maxModRevision: req.max_mod_revision,
    minCreateRevision: req.min_create_revision,
    maxCreateRevision: req.max_create_revision,
  };
  const op: { -readonly [K in keyof store.RangeRequest]: store.RangeRequest[K] } = {
    f: 'range',
    ...keyRangeOf(req.key, req.range_end),
  };
  for (const [name, value] of Object.entries(numbers) as [keyof typeof numbers, number][]) {
    if (value !== 0) op[name] = value;
  }
  if (sortOrder !== 'none') op.sortOrder = sortOrder;
  if (sortTarget !== 'key') op.sortTarget = sortTarget;
  if (req.keys_only) op.keysOnly = true;
  if (req.count_only) op.countOnly = true;
  return op;
}

/** A store range answer on the wire (its `revision` is the header's, as etcd's). */
export function rangeResponseOf(ctx: EtcdContext, r: store.RangeResponse): RangeResponse {
  return {
    header: headerOf(ctx, r.revision),
    kvs: r.kvs.map((kv) => wireKvOf(kv)),
    more: r.more,
    count: r.count,
  };
}

/**
 * A range read, in one engine call when its answer holds at most `rangeKeysMax` keys (a
 * limit that small, or count_only). Otherwise in pages of `rangeKeysMax` keys in key order,
 * every page read at the first page's revision, so the answer is one revision's state as
 * etcd's is, while no single call builds an unbounded answer; the pages are then sorted
 * and cut to the limit here, as the store would have done.
 */
export async function readRange(
  ctx: EtcdContext,
  op: store.RangeRequest,
  consistency: ReadConsistency,
): Promise<store.RangeResponse> {
  const limit = op.limit ?? 0;
  const single =
    op.countOnly === true || (limit > 0 && limit <= ctx.rangeKeysMax) || op.rangeEnd === undefined;
  if (single) return resultOf(await ctx.engine.read(op, consistency), 'range');
  const { sortOrder, sortTarget, limit: _limit, ...paged } = op;
  const page = { ...paged, limit: ctx.rangeKeysMax };
  const first = resultOf(await ctx.engine.read(page, consistency), 'range');
  const at = op.revision ?? first.revision;
  const kvs = [...first.kvs];
  let more = first.more;
  // Each page starts just after the last key of the one before; every one moves on.
  for (let pages = 1; more; pages++) {
    const after = `${(kvs.at(-1) as store.KeyValue).key}\0`;
    const next = { ...page, key: after, revision: at };
    const got = resultOf(await ctx.engine.read(next, consistency), 'range');
    kvs.push(...got.kvs);
    more = got.more && got.kvs.length > 0;
    if (pages > first.count) throw new Error('range paging did not move on');
  }
  const sorted = sortKvs(kvs, sortOrder ?? 'none', sortTarget ?? 'key');
  const cut = limit > 0 && sorted.length > limit;
  return {
    f: 'range',
    kvs: cut ? sorted.slice(0, limit) : sorted,
    more: cut,
    count: first.count,
    revision: first.revision,
  };
}

export async function range(ctx: EtcdContext, req: RangeRequest): Promise<RangeResponse> {
  const op = rangeOpOf(req);
  checkKeyLength(ctx, op.key);
  const consistency = req.serializable ? 'stale' : 'linearizable';
  return rangeResponseOf(ctx, await readRange(ctx, op, consistency));
}

/** The store's put request for a wire one; the lease id passes through (the store checks it). */
export function putOpOf(ctx: EtcdContext, req: PutRequest): store.PutRequest {
  const key = storeBytesOf(req.key);
  const value = storeBytesOf(req.value);
  checkKeyLength(ctx, key);
  checkValueLength(ctx, value);
  return {
    f: 'put',
    key,
    value,
    ...(req.lease !== 0 ? { lease: req.lease } : {}),
    ...(req.prev_kv ? { prevKv: true } : {}),
    ...(req.ignore_value ? { ignoreValue: true } : {}),
    ...(req.ignore_lease ? { ignoreLease: true } : {}),
  };
}

export function putResponseOf(ctx: EtcdContext, r: store.PutResponse): PutResponse {
  const prev = r.prevKv ?? null;
  return {
    header: headerOf(ctx, r.revision),
    ...(prev === null ? {} : { prev_kv: wireKvOf(prev) }),
  };
}

export async function put(ctx: EtcdContext, req: PutRequest): Promise<PutResponse> {
  const done = resultOf(await writeOp(ctx, putOpOf(ctx, req)), 'put');
  return putResponseOf(ctx, done);
}

export function deleteOpOf(ctx: EtcdContext, req: DeleteRangeRequest): store.DeleteRangeRequest {
  const range = keyRangeOf(req.key, req.range_end);
  checkKeyLength(ctx, range.key);
  return { f: 'deleteRange', ...range, ...(req.prev_kv ? { prevKv: true } : {}) };
}

export function deleteResponseOf(
  ctx: EtcdContext,
  r: store.DeleteRangeResponse,
): DeleteRangeResponse {
  return {
    header: headerOf(ctx, r.revision),
    deleted: r.deleted,
    prev_kvs: r.prevKvs.map((kv) => wireKvOf(kv)),
  };
}

/** DeleteRange: one store operation, so a range delete is atomic and takes one revision. */
export async function deleteRange(
  ctx: EtcdContext,
  req: DeleteRangeRequest,
): Promise<DeleteRangeResponse> {
  const done = resultOf(await writeOp(ctx, deleteOpOf(ctx, req)), 'deleteRange');
  return deleteResponseOf(ctx, done);
}

/**
 * Compact: the store forgets history below the revision as the command applies, on every
 * member, so `physical` (wait until the compaction is done) holds for every answer.
 */
export async function compact(
  ctx: EtcdContext,
  req: CompactionRequest,
): Promise<CompactionResponse> {
  if (req.revision < 0) throw invalidArgument('revision must not be negative');
  const op: store.CompactionRequest = {
    f: 'compact',
    revision: req.revision,
    ...(req.physical ? { physical: true } : {}),
  };
  const done = resultOf(await writeOp(ctx, op), 'compact');
  return { header: headerOf(ctx, done.revision) };
}
