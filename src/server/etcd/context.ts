import type { KvChange, KvCommand, KvOp, KvResult } from '../../kv/machine.ts';
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
  /** How long a write's prev_kv may take to arrive through the local change feed. */
  readonly prevKvTimeoutMs: number;
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

/** Narrows a result to the kind its operation produces (the engine answers in kind). */
export function resultOf<F extends KvResult['f']>(
  result: KvResult,
  f: F,
): Extract<KvResult, { f: F }> {
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

/**
 * The changes to `key` after `fromRevision` up to and including `untilRevision`, from this
 * node's change feed. Waits (up to `prevKvTimeoutMs`) until the feed reaches
 * `untilRevision`: on a follower the write may be answered before it is applied here.
 */
export function changesOfKey(
  ctx: EtcdContext,
  key: string,
  fromRevision: number,
  untilRevision: number,
): Promise<KvChange[] | 'unavailable'> {
  return new Promise((resolve) => {
    const seen: KvChange[] = [];
    let done = false;
    let handle: { cancel(): void } | 'compacted' | undefined;
    const finish = (answer: KvChange[] | 'unavailable') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (handle !== undefined && handle !== 'compacted') handle.cancel();
      resolve(answer);
    };
    const timer = setTimeout(() => finish('unavailable'), ctx.prevKvTimeoutMs);
    handle = ctx.engine.watch(fromRevision, (change) => {
      if (done || change.revision > untilRevision) return;
      if (change.key === key) seen.push(change);
      if (change.revision === untilRevision) finish(seen);
    });
    if (handle === 'compacted') finish('unavailable');
    else if (done) handle.cancel();
  });
}
