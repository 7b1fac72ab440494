import { unreachable } from '../kernel/assert.ts';
import { classifyReplicaReply } from './refusal.ts';
import { refused } from './router-calls.ts';
import type { CallOutcome, MemberChange } from './router-msgs.ts';
import type {
  MemberStep,
  MembershipRules,
  RoutedReplica,
  RoutedTypes,
  RouterBinding,
} from './router-types.ts';

/**
 * The steps of a membership change on the leader (router.ts runs them one after another):
 * what each asks of the replica, and what its answer means. A step that went through says
 * `next`; anything else is the attempt's outcome in the refusal vocabulary, which the router
 * treats as it treats a write's (ask again after a pause, or through another leader, or
 * answer).
 */

export function memberStepRequest<T extends RoutedTypes, R extends RoutedReplica<T>>(
  binding: RouterBinding<T, R>,
  rules: MembershipRules<R, T['request']>,
  client: number,
  step: MemberStep,
  change: MemberChange,
): T['request'] {
  switch (step.type) {
    case 'refuseIfSet':
      return binding.kvRequest(
        client,
        { session: 0, seq: 0, op: { f: 'get', key: step.key } },
        undefined,
      );
    case 'write':
      return binding.kvRequest(client, step.cmd, undefined);
    case 'change':
      return rules.changeRequest(client, change);
    default:
      return unreachable(step, 'member step');
  }
}

export function memberStepOutcome<T extends RoutedTypes, R extends RoutedReplica<T>>(
  rules: MembershipRules<R, T['request']>,
  replica: R,
  step: MemberStep,
  change: MemberChange,
  reply: T['reply'],
): 'next' | CallOutcome {
  switch (step.type) {
    case 'refuseIfSet': {
      const answer = classifyReplicaReply(reply, 'read');
      if (answer.type !== 'result') return answer;
      const r = answer.result;
      return r.f === 'get' && r.entry !== null
        ? { type: 'refused', refusal: step.refusal }
        : 'next';
    }
    case 'write': {
      const answer = classifyReplicaReply(reply, 'write');
      return answer.type === 'result' ? 'next' : answer;
    }
    case 'change': {
      if (reply.type === 'done') return 'next';
      // An earlier attempt of this very change may have gone through.
      if (rules.visible(replica, change)) return 'next';
      const answer = classifyReplicaReply(reply, 'write');
      if (answer.type === 'result') return 'next';
      const refusal = answer.refusal;
      return refusal.type === 'conflict'
        ? refused('conflict', `membership change refused: ${refusal.reason}`)
        : answer;
    }
    default:
      return unreachable(step, 'member step');
  }
}
