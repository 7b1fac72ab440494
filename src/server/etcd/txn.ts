import type * as store from '../../kv/ops.ts';
import { TXN_DEPTH_MAX } from '../../kv/validate.ts';
import { type EtcdContext, headerOf, resultOf, writeOp } from './context.ts';
import { invalidArgument } from './errors.ts';
import { keyRangeOf, storeBytesOf } from './keys.ts';
import {
  deleteOpOf,
  deleteResponseOf,
  putOpOf,
  putResponseOf,
  rangeOpOf,
  rangeResponseOf,
} from './kv.ts';
import {
  type Compare,
  CompareResult,
  CompareTarget,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from './types.ts';

/**
 * Txn as one store transaction (src/kv/etcd.ts applyTxn): compares on value, version,
 * create_revision, mod_revision and lease over a key or a range, success and failure
 * branches, nested txns, all with etcd's rules (one revision for the whole txn, compares on
 * the state before it, a key written twice refused, any error applying nothing). It goes
 * through the log even when it only reads, as etcd's does unless every op is serializable.
 */

const RESULTS: Readonly<Record<number, store.CompareResult>> = {
  [CompareResult.equal]: 'equal',
  [CompareResult.greater]: 'greater',
  [CompareResult.less]: 'less',
  [CompareResult.notEqual]: 'notEqual',
};

export function compareOf(c: Compare): store.Compare {
  const result = RESULTS[c.result];
  if (result === undefined) throw invalidArgument(`unknown compare result ${c.result}`);
  const on = { ...keyRangeOf(c.key, c.range_end), result };
  switch (c.target) {
    case CompareTarget.version:
      return { ...on, target: 'version', version: c.version ?? 0 };
    case CompareTarget.create:
      return { ...on, target: 'create', createRevision: c.create_revision ?? 0 };
    case CompareTarget.mod:
      return { ...on, target: 'mod', modRevision: c.mod_revision ?? 0 };
    case CompareTarget.value:
      return { ...on, target: 'value', value: storeBytesOf(c.value ?? Buffer.alloc(0)) };
    case CompareTarget.lease:
      return { ...on, target: 'lease', lease: c.lease ?? 0 };
    default:
      throw invalidArgument(`unknown compare target ${c.target}`);
  }
}

function requestOpOf(ctx: EtcdContext, op: RequestOp, depth: number): store.RequestOp {
  if (op.request === 'request_range' && op.request_range) return rangeOpOf(op.request_range);
  if (op.request === 'request_put' && op.request_put) return putOpOf(ctx, op.request_put);
  if (op.request === 'request_delete_range' && op.request_delete_range) {
    return deleteOpOf(ctx, op.request_delete_range);
  }
  if (op.request === 'request_txn' && op.request_txn)
    return txnOpOf(ctx, op.request_txn, depth + 1);
  throw invalidArgument('a txn operation has no request');
}

/** `depth`: txns around this one; a forwarded call nested as deep is refused (validate.ts). */
export function txnOpOf(ctx: EtcdContext, req: TxnRequest, depth = 0): store.TxnRequest {
  if (depth >= TXN_DEPTH_MAX) throw invalidArgument(`txns nest at most ${TXN_DEPTH_MAX} deep`);
  return {
    f: 'txn',
    compare: req.compare.map(compareOf),
    success: req.success.map((op) => requestOpOf(ctx, op, depth)),
    failure: req.failure.map((op) => requestOpOf(ctx, op, depth)),
  };
}

function responseOpOf(ctx: EtcdContext, r: store.ResponseOp): ResponseOp {
  switch (r.f) {
    case 'range':
      return { response: 'response_range', response_range: rangeResponseOf(ctx, r) };
    case 'put':
      return { response: 'response_put', response_put: putResponseOf(ctx, r) };
    case 'deleteRange':
      return {
        response: 'response_delete_range',
        response_delete_range: deleteResponseOf(ctx, r),
      };
    case 'txn':
      return { response: 'response_txn', response_txn: txnResponseOf(ctx, r) };
  }
}

function txnResponseOf(ctx: EtcdContext, r: store.TxnResponse): TxnResponse {
  return {
    header: headerOf(ctx, r.revision),
    succeeded: r.succeeded,
    responses: r.responses.map((op) => responseOpOf(ctx, op)),
  };
}

export async function txn(ctx: EtcdContext, req: TxnRequest): Promise<TxnResponse> {
  const done = resultOf(await writeOp(ctx, txnOpOf(ctx, req)), 'txn');
  return txnResponseOf(ctx, done);
}
