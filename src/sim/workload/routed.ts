import type { ClientId } from '../../kernel/ids.ts';
import { NO_NODE } from '../../kernel/ids.ts';
import type { RoutedTypes, RouterTypes } from '../../replica/router.ts';
import type { KvAdapter, KvOp, KvOutcome } from './kv.ts';

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
    request: (op: KvOp, requestId: number, client: ClientId, attemptId: number) => ({
      type: 'call',
      id: attemptId,
      kind: op.f === 'get' ? 'read' : 'write',
      session: client,
      seq: requestId,
      op,
      timeoutMs: callTimeoutMs,
      forward: true,
    }),
    // Replicas' own answers never reach a client: only the router's answers carry its ids.
    attemptIdOf: (reply) => (reply.type === 'answer' ? reply.id : -1),
    classify(reply): KvOutcome {
      if (reply.type !== 'answer') return { kind: 'unknown' };
      const answer = reply.answer;
      if (answer.type === 'result') {
        const r = answer.result;
        if (r.f === 'get') return { kind: 'ok', value: r.entry?.value ?? null };
        if (r.f === 'cas') {
          return r.ok ? { kind: 'ok', value: null } : { kind: 'fail', reason: 'cas mismatch' };
        }
        if (r.f === 'stale') return { kind: 'unknown' };
        return { kind: 'ok', value: null };
      }
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
