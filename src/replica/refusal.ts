import { unreachable } from '../kernel/assert.ts';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { KvResult } from '../kv/machine.ts';
import type { ReplicaReply } from './raft-kv.ts';

/**
 * Why a call got no result: the one vocabulary of refusals, from the replica that refuses
 * to the HTTP layer that answers the client. Replicas' replies are classified into it here,
 * it crosses the peer protocol as data (a forwarded call's outcome), and only the edge
 * (src/server/errors.ts) maps it to a status code.
 *
 * Each kind says what the client may conclude and do:
 * - `notLeader`: this node does not serve the call; `leader` is its hint (NO_NODE when none
 *   is known). Nothing was applied.
 * - `overloaded`: refused before it was proposed, for want of room; retry later.
 * - `retry`: nothing was applied and the cause is passing (an election, a leadership
 *   transfer, no answer in time to a read); retry later.
 * - `outcomeUnknown`: a write was proposed but whether it applies is unknown; a retry with
 *   its session and sequence number is safe.
 * - `invalid`: the call is malformed or refused as the caller's mistake; never proposed.
 * - `conflict`: the call is well formed but contradicts the cluster's state (a membership
 *   change that does not apply, a retired node id).
 * - `removed`: the node answering was removed from the cluster.
 * - `unsupported`: the protocol does not implement the call.
 */
export type Refusal =
  | { readonly type: 'notLeader'; readonly leader: NodeId }
  | { readonly type: 'overloaded'; readonly reason: string }
  | { readonly type: 'retry'; readonly reason: string }
  | { readonly type: 'outcomeUnknown'; readonly reason: string }
  | { readonly type: 'invalid'; readonly reason: string }
  | { readonly type: 'conflict'; readonly reason: string }
  | { readonly type: 'removed'; readonly reason: string }
  | { readonly type: 'unsupported'; readonly reason: string };

export type RefusalType = Refusal['type'];

/**
 * Every refusal type, derived from the union: the record's keys must be exactly the union's
 * members, so adding a kind without listing it here fails to compile.
 */
const refusalTypeRecord: { readonly [K in RefusalType]: true } = {
  notLeader: true,
  overloaded: true,
  retry: true,
  outcomeUnknown: true,
  invalid: true,
  conflict: true,
  removed: true,
  unsupported: true,
};

export const refusalTypes: ReadonlySet<RefusalType> = new Set(
  Object.keys(refusalTypeRecord) as RefusalType[],
);

/** What a replica's reply to a KV call means. */
export type CallAnswer =
  | { readonly type: 'result'; readonly result: KvResult }
  | { readonly type: 'refused'; readonly refusal: Refusal };

/**
 * A KV replica's reply in the refusal vocabulary. `unknown` is the only reply whose meaning
 * depends on the call: a write may have been applied, a read changed nothing.
 */
export function classifyReplicaReply(reply: ReplicaReply, kind: 'read' | 'write'): CallAnswer {
  switch (reply.type) {
    case 'result':
      return { type: 'result', result: reply.result };
    case 'notLeader':
      return { type: 'refused', refusal: { type: 'notLeader', leader: reply.leader } };
    case 'rejected':
      switch (reply.reason) {
        case 'overloaded':
        case 'uncommitted-cap':
        case 'read-cap':
          return { type: 'refused', refusal: { type: 'overloaded', reason: reply.reason } };
        case 'transfer-in-progress':
        case 'change-in-progress':
          return { type: 'refused', refusal: { type: 'retry', reason: reply.reason } };
        default:
          return { type: 'refused', refusal: { type: 'conflict', reason: reply.reason } };
      }
    case 'unknown':
      return kind === 'write'
        ? {
            type: 'refused',
            refusal: { type: 'outcomeUnknown', reason: 'the entry proposed for it was lost' },
          }
        : { type: 'refused', refusal: { type: 'retry', reason: 'the read was interrupted' } };
    case 'done':
      return {
        type: 'refused',
        refusal: { type: 'invalid', reason: `a KV call answered '${reply.type}'` },
      };
    default:
      return unreachable(reply, 'replica reply');
  }
}

/** Whether the caller may ask the same node again after a pause (nothing final was said). */
export function isPassing(refusal: Refusal): boolean {
  return refusal.type === 'retry' || (refusal.type === 'notLeader' && refusal.leader === NO_NODE);
}

/** One line for logs and error messages. */
export function describeRefusal(refusal: Refusal): string {
  switch (refusal.type) {
    case 'notLeader':
      return refusal.leader === NO_NODE ? 'no leader is known' : `node ${refusal.leader} leads`;
    case 'overloaded':
    case 'retry':
    case 'outcomeUnknown':
    case 'invalid':
    case 'conflict':
    case 'removed':
    case 'unsupported':
      return refusal.reason;
    default:
      return unreachable(refusal, 'refusal');
  }
}

type Checked<V> =
  | { readonly ok: true; readonly value: V }
  | { readonly ok: false; readonly why: string };

/** Checks a refusal decoded from a peer: a known type with its field. */
export function checkRefusal(raw: unknown): Checked<Refusal> {
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const type = r.type;
  if (typeof type !== 'string' || !refusalTypes.has(type as RefusalType)) {
    return { ok: false, why: `unknown refusal ${JSON.stringify(type)}` };
  }
  if (type === 'notLeader') {
    const leader = r.leader;
    if (!Number.isSafeInteger(leader) || (leader as number) < 0) {
      return { ok: false, why: 'notLeader without a leader hint' };
    }
    return { ok: true, value: { type, leader: leader as number } };
  }
  if (typeof r.reason !== 'string') return { ok: false, why: `${type} without a reason` };
  return { ok: true, value: { type, reason: r.reason } as Refusal };
}
