import type { KvEntry } from '../../kv/machine.ts';
import { checkValueLength, type EtcdContext, headerOf, resultOf, writeOp } from './context.ts';
import { etcdErrors, invalidArgument, unimplemented } from './errors.ts';
import { keyValueOf, spanOf, storeBytesOf, wireBytesOf } from './keys.ts';
import { deleteRange, put, range } from './kv.ts';
import {
  type Compare,
  CompareResult,
  CompareTarget,
  type RangeRequest,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from './types.ts';

/**
 * Txn, for the shapes today's operations carry out atomically and exactly:
 * - no compare and at most one operation: that operation;
 * - compares on one key whose branches only read that key: one linearizable read, the
 *   compares evaluated on it, the branch's reads answered from it;
 * - one compare "value = v", "version = n", "create_revision = 0" or "mod_revision = 0" on a
 *   key whose success branch is one put of that key and whose failure branch is empty or one
 *   read of it: a compare-and-set (`cas` / `casVersion`), whose failed answer carries the
 *   entry it saw.
 * Anything else is refused as Unimplemented naming what it needs (multi-key transactions).
 */

/** etcd's default --max-txn-ops. */
const TXN_OPS_MAX = 128;

export async function txn(ctx: EtcdContext, req: TxnRequest): Promise<TxnResponse> {
  if (req.success.length > TXN_OPS_MAX || req.failure.length > TXN_OPS_MAX) {
    throw etcdErrors.tooManyOps();
  }
  for (const op of [...req.success, ...req.failure]) checkOp(op);
  // No compare: the success branch runs (etcd's rule), so the failure branch never does.
  if (req.compare.length === 0 && req.success.length <= 1) return single(ctx, req.success[0]);
  const key = compareKey(req.compare);
  const ops = [...req.success, ...req.failure];
  if (ops.every((op) => readsOnly(op, key))) return readOnlyTxn(ctx, req, key);
  return casTxn(ctx, req, key);
}

function checkOp(op: RequestOp): void {
  if (op.request === undefined) throw invalidArgument('a txn operation has no request');
  if (op.request === 'request_txn') throw unimplemented('nested txns (multi-key transactions)');
}

async function single(ctx: EtcdContext, op: RequestOp | undefined): Promise<TxnResponse> {
  if (op === undefined) {
    const status = ctx.engine.status();
    return { header: headerOf(ctx, status.revision), succeeded: true, responses: [] };
  }
  const response = await runOp(ctx, op);
  const header = headerOfResponse(response) ?? headerOf(ctx, ctx.engine.status().revision);
  return { header, succeeded: true, responses: [response] };
}

async function runOp(ctx: EtcdContext, op: RequestOp): Promise<ResponseOp> {
  if (op.request === 'request_range' && op.request_range) {
    return { response: 'response_range', response_range: await range(ctx, op.request_range) };
  }
  if (op.request === 'request_put' && op.request_put) {
    return { response: 'response_put', response_put: await put(ctx, op.request_put) };
  }
  if (op.request === 'request_delete_range' && op.request_delete_range) {
    const response_delete_range = await deleteRange(ctx, op.request_delete_range);
    return { response: 'response_delete_range', response_delete_range };
  }
  throw invalidArgument('a txn operation has no request');
}

function headerOfResponse(r: ResponseOp): TxnResponse['header'] | undefined {
  return (r.response_range ?? r.response_put ?? r.response_delete_range)?.header;
}

/** The one key every compare names (etcd allows several; one key is what we can read). */
function compareKey(compares: readonly Compare[]): string {
  let key: string | undefined;
  for (const c of compares) {
    if (c.range_end.length > 0) throw unimplemented('a compare over a key range');
    const k = storeBytesOf(c.key);
    if (key !== undefined && k !== key) throw unimplemented('compares on several keys');
    key = k;
  }
  if (key === undefined) throw unimplemented('a txn with several operations and no compare');
  return key;
}

function isSingleKeyRange(req: RangeRequest, key: string): boolean {
  if (req.range_end.length > 0 || req.revision !== 0) return false;
  const span = spanOf(req.key, req.range_end);
  return span.kind === 'key' && span.key === key;
}

function readsOnly(op: RequestOp, key: string): boolean {
  return (
    op.request === 'request_range' && !!op.request_range && isSingleKeyRange(op.request_range, key)
  );
}

/** Whether `c` holds for `entry` (null: the key is absent, every field 0 or empty). */
export function compareHolds(c: Compare, entry: KvEntry | null): boolean {
  let order: number;
  switch (c.target) {
    case CompareTarget.value: {
      if (entry === null) return false; // etcd: a value compare on an absent key fails
      order = Buffer.compare(wireBytesOf(entry.value), c.value ?? Buffer.alloc(0));
      break;
    }
    case CompareTarget.version:
      order = Math.sign((entry?.version ?? 0) - (c.version ?? 0));
      break;
    case CompareTarget.mod:
      order = Math.sign((entry?.modRevision ?? 0) - (c.mod_revision ?? 0));
      break;
    case CompareTarget.create: {
      const created = entry === null ? 0 : keyValueOf(entry).create_revision;
      if (entry !== null && created === 0) {
        throw unimplemented('a compare on create_revision of a key written since its creation');
      }
      order = Math.sign(created - (c.create_revision ?? 0));
      break;
    }
    case CompareTarget.lease:
      order = Math.sign(0 - (c.lease ?? 0));
      break;
    default:
      throw invalidArgument(`unknown compare target ${c.target}`);
  }
  switch (c.result) {
    case CompareResult.equal:
      return order === 0;
    case CompareResult.greater:
      return order > 0;
    case CompareResult.less:
      return order < 0;
    case CompareResult.notEqual:
      return order !== 0;
    default:
      throw invalidArgument(`unknown compare result ${c.result}`);
  }
}

function rangeAnswer(
  ctx: EtcdContext,
  req: RangeRequest,
  entry: KvEntry | null,
  revision: number,
): ResponseOp {
  const count = entry === null ? 0 : 1;
  const kvs = entry === null || req.count_only ? [] : [keyValueOf(entry, req.keys_only)];
  return {
    response: 'response_range',
    response_range: { header: headerOf(ctx, revision), kvs, more: false, count },
  };
}

async function readOnlyTxn(ctx: EtcdContext, req: TxnRequest, key: string): Promise<TxnResponse> {
  const got = resultOf(await ctx.engine.read({ f: 'get', key }, 'linearizable'), 'get');
  const succeeded = req.compare.every((c) => compareHolds(c, got.entry));
  const branch = succeeded ? req.success : req.failure;
  const responses = branch.map((op) =>
    rangeAnswer(ctx, op.request_range as RangeRequest, got.entry, got.revision),
  );
  return { header: headerOf(ctx, got.revision), succeeded, responses };
}

/** The compare-and-set a compare stands for, or why it stands for none. */
function casGuard(c: Compare): { expected: string | null } | { expectedVersion: number } {
  if (c.result !== CompareResult.equal) {
    throw unimplemented('a txn write guarded by a compare other than "=" (multi-key transactions)');
  }
  switch (c.target) {
    case CompareTarget.value:
      return { expected: storeBytesOf(c.value ?? Buffer.alloc(0)) };
    case CompareTarget.version:
      return { expectedVersion: c.version ?? 0 };
    case CompareTarget.create:
    case CompareTarget.mod:
      if ((c.create_revision ?? 0) === 0 && (c.mod_revision ?? 0) === 0) {
        return { expectedVersion: 0 };
      }
      throw unimplemented('a txn write guarded by create_revision or mod_revision (MVCC)');
    default:
      throw unimplemented('a txn write guarded by a lease compare (leases)');
  }
}

async function casTxn(ctx: EtcdContext, req: TxnRequest, key: string): Promise<TxnResponse> {
  const [compare, ...more] = req.compare;
  const [success, ...moreSuccess] = req.success;
  const [failure, ...moreFailure] = req.failure;
  const putReq = success?.request === 'request_put' ? success.request_put : undefined;
  const shape =
    compare !== undefined &&
    more.length === 0 &&
    moreSuccess.length === 0 &&
    moreFailure.length === 0 &&
    putReq !== undefined &&
    putReq !== null &&
    storeBytesOf(putReq.key) === key &&
    (failure === undefined || readsOnly(failure, key));
  if (!shape || compare === undefined || !putReq) {
    throw unimplemented(
      'this txn shape (multi-key transactions); supported: one compare guarding one put of its key',
    );
  }
  if (putReq.lease !== 0) throw etcdErrors.leaseNotFound();
  if (putReq.prev_kv || putReq.ignore_value || putReq.ignore_lease) {
    throw unimplemented('prev_kv, ignore_value or ignore_lease on a put inside a txn');
  }
  const value = storeBytesOf(putReq.value);
  checkValueLength(ctx, value);
  const guard = casGuard(compare);
  const op =
    'expected' in guard
      ? ({ f: 'cas', key, expected: guard.expected, value } as const)
      : ({ f: 'casVersion', key, expectedVersion: guard.expectedVersion, value } as const);
  const done = resultOf(await writeOp(ctx, op), 'cas');
  const header = headerOf(ctx, done.revision);
  if (done.ok) {
    return {
      header,
      succeeded: true,
      responses: [{ response: 'response_put', response_put: { header } }],
    };
  }
  const responses =
    failure === undefined
      ? []
      : [rangeAnswer(ctx, failure.request_range as RangeRequest, done.entry, done.revision)];
  return { header, succeeded: false, responses };
}
