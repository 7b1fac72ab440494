import type { ClientId } from '../../kernel/ids.ts';
import { NO_NODE } from '../../kernel/ids.ts';
import type { KvResult } from '../../kv/machine.ts';
import type { RoutedTypes, RouterTypes } from '../../replica/router.ts';
import {
  isWorkloadRead,
  type KvAdapter,
  type KvOutcome,
  type KvWorkloadOp,
  machineOp,
} from './kv.ts';

/**
 * The key-value workload's adapter for a node hosted whole, call router in front of its
 * replica (src/replica/router.ts), as real nodes run: a client asks any member, a follower
 * forwards to its leader, and the answer comes back in the refusal vocabulary. Each attempt
 * carries its own `id` (what answers echo) while `seq`, what the state machine deduplicates
 * on, stays the operation's.
 */
export function routedKvAdapter<T extends RoutedTypes>(
  callTimeoutMs: number,
): KvAdapter<RouterTypes<T>> {
  return {
    request: (op, requestId, client, attemptId) =>
      call(op, requestId, client, attemptId, callTimeoutMs),
    requestMvcc: (op, requestId, client, attemptId) =>
      call(op, requestId, client, attemptId, callTimeoutMs),
    // Replicas' own answers never reach a client: only the router's answers carry its ids.
    attemptIdOf: (reply) => (reply.type === 'answer' ? reply.id : -1),
    classify(reply): KvOutcome {
      if (reply.type !== 'answer') return { kind: 'unknown' };
      const answer = reply.answer;
      if (answer.type === 'result') return classifyResult(answer.result);
      const refusal = answer.refusal;
      switch (refusal.type) {
        case 'notLeader':
          return {
            kind: 'redirect',
            hint: refusal.leader === NO_NODE ? undefined : refusal.leader,
          };
        // Refused before proposing: this attempt applied nothing, so trying elsewhere is
        // safe. (A write that is given up ends `info` all the same: the network duplicates
        // requests, and another copy may have been applied.)
        case 'overloaded':
        case 'retry':
        case 'removed':
          return { kind: 'redirect', hint: undefined };
        case 'outcomeUnknown':
        case 'invalid':
        case 'conflict':
        case 'unsupported':
          return { kind: 'unknown' };
      }
    },
    dedupsRetries: true,
  };
}

function call<T extends RoutedTypes>(
  op: KvWorkloadOp,
  requestId: number,
  client: ClientId,
  attemptId: number,
  timeoutMs: number,
): RouterTypes<T>['request'] {
  return {
    type: 'call',
    id: attemptId,
    kind: isWorkloadRead(op) ? 'read' : 'write',
    session: client,
    seq: requestId,
    op: machineOp(op),
    timeoutMs,
    forward: true,
  };
}

/** What a state machine result means to the workload's client. */
function classifyResult(r: KvResult): KvOutcome {
  switch (r.f) {
    case 'get':
      return {
        kind: 'ok',
        value: r.entry?.value ?? null,
        revision: r.revision,
        modRevision: r.entry?.modRevision ?? 0,
      };
    case 'put':
      return { kind: 'ok', value: null, revision: r.revision, writeRevision: r.revision };
    case 'delete':
      return {
        kind: 'ok',
        value: null,
        revision: r.revision,
        ...(r.deleted ? { writeRevision: r.revision } : {}),
      };
    case 'cas':
      return r.ok
        ? { kind: 'ok', value: null, revision: r.revision, writeRevision: r.revision }
        : { kind: 'fail', reason: 'cas mismatch' };
    case 'txn':
      return r.succeeded
        ? { kind: 'ok', value: null, revision: r.revision, writeRevision: r.revision }
        : { kind: 'fail', reason: 'txn compare failed' };
    case 'range': {
      const kv = r.kvs[0];
      return {
        kind: 'ok',
        value: kv?.value ?? null,
        revision: r.revision,
        modRevision: kv?.modRevision ?? 0,
      };
    }
    case 'error':
      // Refused by every replica alike (compacted, future revision): nothing applied.
      return { kind: 'fail', reason: r.code };
    case 'stale':
      return { kind: 'unknown' };
    default:
      return { kind: 'ok', value: null, revision: 'revision' in r ? r.revision : 0 };
  }
}
