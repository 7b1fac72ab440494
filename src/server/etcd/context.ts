import type { KvCommand, KvOp, KvResult } from '../../kv/machine.ts';
import type { KvEngine } from '../engine.ts';
import { etcdErrors, kvErrorStatus } from './errors.ts';
import type { ResponseHeader } from './types.ts';

/** What every etcd service handler shares: the engine, the limits, and the response header. */
export interface EtcdContext {
  readonly engine: KvEngine;
  /** Stable for the cluster and the same on every member (see clusterIdOf in server.ts). */
  readonly clusterId: number;
  /** Keys one range, prefix delete or watch create may cover; more is refused, not cut. */
  readonly rangeKeysMax: number;
  readonly keyLengthMax: number;
  readonly valueLengthMax: number;
}

/** The header of an answer at `revision` (the store's revision the answer reflects). */
export function headerOf(ctx: EtcdContext, revision: number): ResponseHeader {
  const status = ctx.engine.status();
  return {
    cluster_id: ctx.clusterId,
    member_id: ctx.engine.id,
    revision,
    raft_term: status.term,
  };
}

/**
 * Narrows a result to the kind its operation produces (the engine answers in kind); a
 * state machine refusal is thrown as etcd's status for it.
 */
export function resultOf<F extends KvResult['f']>(
  result: KvResult,
  f: F,
): Extract<KvResult, { f: F }> {
  if (result.f === 'error' && f !== 'error') throw kvErrorStatus(result);
  // gRPC writes carry no session (etcd has no exactly-once), so 'stale' cannot come back.
  if (result.f === 'error' && f !== 'error') throw kvErrorStatus(result);
  if (result.f !== f) throw new Error(`engine answered '${result.f}' to a '${f}'`);
  return result as Extract<KvResult, { f: F }>;
}

/** A write as etcd clients send it: no exactly-once session. */
export function writeOp(ctx: EtcdContext, op: KvOp): Promise<KvResult> {
  const cmd: KvCommand = { session: 0, seq: 0, op };
  return ctx.engine.write(cmd);
}

export function checkKeyLength(ctx: EtcdContext, key: string): void {
  if (key.length > ctx.keyLengthMax) throw etcdErrors.requestTooLarge();
}

export function checkValueLength(ctx: EtcdContext, value: string): void {
  if (value.length > ctx.valueLengthMax) throw etcdErrors.requestTooLarge();
}
