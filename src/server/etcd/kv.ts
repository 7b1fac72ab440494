import type { KvChange, KvEntry, KvResult } from '../../kv/machine.ts';
import type { ReadConsistency } from '../engine.ts';
import {
  changesOfKey,
  checkKeyLength,
  checkValueLength,
  type EtcdContext,
  headerOf,
  resultOf,
  writeOp,
} from './context.ts';
import { etcdErrors, invalidArgument, unimplemented } from './errors.ts';
import { compareKeys, keyValueOf, type Span, spanOf, storeBytesOf } from './keys.ts';
import {
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type KeyValue,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  SortOrder,
  SortTarget,
} from './types.ts';

/**
 * etcd's KV service (Range, Put, DeleteRange) over today's engine operations: get, list by
 * prefix, put, delete. What those cannot answer exactly (past revisions, arbitrary ranges,
 * leases) is refused as Unimplemented naming the missing piece, never answered wrongly.
 */

/** The entries of `span`, all of them (at most rangeKeysMax), read in one engine call. */
export async function readSpan(
  ctx: EtcdContext,
  span: Span,
  consistency: ReadConsistency,
): Promise<{ entries: KvEntry[]; revision: number }> {
  if (span.kind === 'key') {
    const got = resultOf(await ctx.engine.read({ f: 'get', key: span.key }, consistency), 'get');
    return { entries: got.entry === null ? [] : [got.entry], revision: got.revision };
  }
  const op = { f: 'list', prefix: span.prefix, limit: ctx.rangeKeysMax } as const;
  const listed = resultOf(await ctx.engine.read(op, consistency), 'list');
  if (listed.more) {
    throw unimplemented(`a range over more than ${ctx.rangeKeysMax} keys (range paging)`);
  }
  return { entries: [...listed.entries].sort(compareKeys), revision: listed.revision };
}

function checkRangeRequest(req: RangeRequest): void {
  if (req.limit < 0) throw invalidArgument('limit must not be negative');
  if (req.revision < 0) throw invalidArgument('revision must not be negative');
  if (req.min_create_revision !== 0 || req.max_create_revision !== 0) {
    throw unimplemented('filtering a range by create_revision (MVCC create revisions)');
  }
  if (req.sort_target === SortTarget.create && req.sort_order !== SortOrder.none) {
    throw unimplemented('sorting by create_revision (MVCC create revisions)');
  }
  if (req.sort_order > SortOrder.descend || req.sort_target > SortTarget.value) {
    throw invalidArgument(`unknown sort order ${req.sort_order} or target ${req.sort_target}`);
  }
}

/** A read at `req.revision` is served only when that is the revision the read saw. */
function checkRevision(req: { revision: number }, revision: number): void {
  if (req.revision === 0 || req.revision === revision) return;
  if (req.revision > revision) throw etcdErrors.futureRevision();
  throw unimplemented(`reading at a past revision (${req.revision}; the store is at ${revision})`);
}

function sortEntries(entries: KvEntry[], order: number, target: number): KvEntry[] {
  if (order === SortOrder.none) return entries;
  const by: Record<number, (a: KvEntry, b: KvEntry) => number> = {
    [SortTarget.key]: compareKeys,
    [SortTarget.version]: (a, b) => a.version - b.version,
    [SortTarget.mod]: (a, b) => a.modRevision - b.modRevision,
    [SortTarget.value]: (a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
  };
  const compare = by[target] ?? compareKeys;
  // Ties keep key order, as etcd's stable sort of a key-ordered range does.
  const sorted = [...entries].sort(compare);
  return order === SortOrder.descend ? sorted.reverse() : sorted;
}

export async function range(ctx: EtcdContext, req: RangeRequest): Promise<RangeResponse> {
  checkRangeRequest(req);
  const span = spanOf(req.key, req.range_end);
  const consistency = req.serializable ? 'stale' : 'linearizable';
  const read = await readSpan(ctx, span, consistency);
  checkRevision(req, read.revision);
  const inMod = (e: KvEntry) =>
    (req.min_mod_revision === 0 || e.modRevision >= req.min_mod_revision) &&
    (req.max_mod_revision === 0 || e.modRevision <= req.max_mod_revision);
  const entries = sortEntries(read.entries.filter(inMod), req.sort_order, req.sort_target);
  const shown = req.limit > 0 ? entries.slice(0, req.limit) : entries;
  return {
    header: headerOf(ctx, read.revision),
    kvs: req.count_only ? [] : shown.map((e) => keyValueOf(e, req.keys_only)),
    more: shown.length < entries.length,
    count: entries.length,
  };
}

/** The key's entry just before `revision`, from its entry at `fromRevision` and the changes. */
export function entryBefore(
  start: KvEntry | null,
  changes: readonly KvChange[],
  revision: number,
): KvEntry | null {
  let entry = start;
  for (const change of changes) {
    if (change.revision >= revision) break;
    entry =
      change.value === null
        ? null
        : {
            key: change.key,
            value: change.value,
            version: (entry?.version ?? 0) + 1,
            modRevision: change.revision,
          };
  }
  return entry;
}

/**
 * Runs a one-key write and recovers the key's entry just before it, exactly: a
 * linearizable read first, then the write, then the changes between the two from the
 * change feed. Today's operations return no previous entry; this needs none from them.
 */
async function withPrevious(
  ctx: EtcdContext,
  key: string,
  write: () => Promise<KvResult>,
  revisionOf: (result: KvResult) => number | undefined,
): Promise<{ result: KvResult; prev: KvEntry | null }> {
  const before = resultOf(await ctx.engine.read({ f: 'get', key }, 'linearizable'), 'get');
  const result = await write();
  const revision = revisionOf(result);
  if (revision === undefined) return { result, prev: null };
  if (revision === before.revision + 1) return { result, prev: before.entry };
  const changes = await changesOfKey(ctx, key, before.revision, revision);
  if (changes === 'unavailable') {
    throw etcdErrors.timeout(
      `the write applied at revision ${revision}, but its prev_kv could not be recovered`,
    );
  }
  return { result, prev: entryBefore(before.entry, changes, revision) };
}

export async function put(ctx: EtcdContext, req: PutRequest): Promise<PutResponse> {
  if (req.key.length === 0) throw etcdErrors.emptyKey();
  if (req.ignore_value || req.ignore_lease) {
    throw unimplemented('put with ignore_value or ignore_lease (leases and MVCC)');
  }
  const key = storeBytesOf(req.key);
  const value = storeBytesOf(req.value);
  checkKeyLength(ctx, key);
  checkValueLength(ctx, value);
  const lease = req.lease === 0 ? {} : { lease: req.lease };
  const write = () => writeOp(ctx, { f: 'put', key, value, ...lease });
  if (!req.prev_kv) {
    const done = resultOf(await write(), 'put');
    return { header: headerOf(ctx, done.revision) };
  }
  const { result, prev } = await withPrevious(ctx, key, write, (r) => resultOf(r, 'put').revision);
  const done = resultOf(result, 'put');
  return {
    header: headerOf(ctx, done.revision),
    ...(prev === null ? {} : { prev_kv: keyValueOf(prev) }),
  };
}

/** Deletes one key; `prevKv`: also recover the entry it deleted. */
async function deleteKey(
  ctx: EtcdContext,
  key: string,
  prevKv: boolean,
): Promise<{ deleted: boolean; revision: number; prev: KvEntry | null }> {
  const write = () => writeOp(ctx, { f: 'delete', key });
  if (!prevKv) {
    const done = resultOf(await write(), 'delete');
    return { deleted: done.deleted, revision: done.revision, prev: null };
  }
  const { result, prev } = await withPrevious(ctx, key, write, (r) => {
    const d = resultOf(r, 'delete');
    return d.deleted ? d.revision : undefined;
  });
  const done = resultOf(result, 'delete');
  return { deleted: done.deleted, revision: done.revision, prev: done.deleted ? prev : null };
}

/** Passes over a prefix before a delete gives up on keys that keep appearing. */
const PREFIX_DELETE_PASSES_MAX = 16;

/**
 * DeleteRange of one key, or of a prefix as one delete per key: today's operations have no
 * multi-key write, so a prefix delete is not atomic (each key gets its own revision), which
 * the README states. The answer is exact for what it did: the keys it deleted, and their
 * entries with prev_kv.
 */
export async function deleteRange(
  ctx: EtcdContext,
  req: DeleteRangeRequest,
): Promise<DeleteRangeResponse> {
  const span = spanOf(req.key, req.range_end);
  if (span.kind === 'key') {
    checkKeyLength(ctx, span.key);
    const one = await deleteKey(ctx, span.key, req.prev_kv);
    return {
      header: headerOf(ctx, one.revision),
      deleted: one.deleted ? 1 : 0,
      prev_kvs: one.prev === null ? [] : [keyValueOf(one.prev)],
    };
  }
  const prevKvs: KeyValue[] = [];
  let deleted = 0;
  let revision = 0;
  for (let pass = 0; pass < PREFIX_DELETE_PASSES_MAX; pass++) {
    const op = { f: 'list', prefix: span.prefix, limit: ctx.rangeKeysMax } as const;
    const listed = resultOf(await ctx.engine.read(op, 'linearizable'), 'list');
    revision = Math.max(revision, listed.revision);
    for (const entry of listed.entries) {
      const one = await deleteKey(ctx, entry.key, req.prev_kv);
      revision = Math.max(revision, one.revision);
      if (!one.deleted) continue;
      deleted++;
      if (one.prev !== null) prevKvs.push(keyValueOf(one.prev));
    }
    if (!listed.more) break;
  }
  return { header: headerOf(ctx, revision), deleted, prev_kvs: prevKvs };
}
