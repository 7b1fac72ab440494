import { type ClientId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { KvCommand, KvOp, KvResult } from '../kv/machine.ts';
import type { Refusal } from './refusal.ts';
import type { CallOutcome, MemberChange } from './router-msgs.ts';
import type { MemberStep } from './router-types.ts';

/**
 * The call router's bookkeeping of one call (router.ts drives it): where it stands, who
 * waits for it, and the small pure helpers its answers are made with.
 */

/** Where a call stands. */
export type Stage =
  | { readonly at: 'replica'; readonly client: ClientId }
  | {
      readonly at: 'member';
      readonly client: ClientId;
      readonly steps: readonly MemberStep[];
      readonly step: number;
    }
  | {
      readonly at: 'forwarded';
      readonly to: NodeId;
      readonly attempt: number;
      readonly applied: ClientId | undefined;
    }
  | { readonly at: 'paused'; readonly resumeAt: number; readonly why: Refusal };

/** Who waits for a call's answer: a client of this node, or a peer that forwarded it. */
export type Asker =
  | { readonly by: 'client'; readonly client: ClientId; readonly id: number }
  | {
      readonly by: 'peer';
      readonly peer: NodeId;
      readonly id: number;
      readonly attempt: number;
    };

/** What a call asks: a KV command (a write or a read), or a membership change. */
export type CallBody =
  | { readonly kind: 'write' | 'read'; readonly cmd: KvCommand }
  | { readonly kind: 'member'; readonly change: MemberChange };

export interface Call {
  readonly key: number;
  readonly body: CallBody;
  readonly deadlineAt: number;
  readonly forward: boolean;
  readonly asker: Asker;
  stage: Stage;
  /** Attempts again after an unknown outcome. */
  unknowns: number;
  /** Times this node has forwarded the call to a leader. */
  forwards: number;
  /** An attempt reached a replica and may have taken effect. */
  mayHaveApplied: boolean;
  /** The attempt in flight may take effect (its answer has not said otherwise). */
  attemptMayApply: boolean;
  proposed: boolean;
}

/** Whether a call changes state (a write or a membership change): it may have applied. */
export function changes(call: Call): boolean {
  return call.body.kind !== 'read';
}

/**
 * Whether an attempt whose outcome came back unknown may be made again: a write under its
 * session (exactly-once) or a membership change (idempotent once visible).
 */
export function mayAskAgain(call: Call): boolean {
  return call.body.kind === 'member' || (call.body.kind === 'write' && call.body.cmd.session !== 0);
}

/** When the call next needs the router: its pause's end, or its deadline. */
export function dueAt(call: Call): number {
  const s = call.stage;
  return s.at === 'paused' && s.resumeAt < call.deadlineAt ? s.resumeAt : call.deadlineAt;
}

export function isNoLeader(refusal: Refusal): boolean {
  return refusal.type === 'notLeader' && refusal.leader === NO_NODE;
}

export function refused(
  type: Exclude<Refusal['type'], 'notLeader'>,
  reason: string,
): { type: 'refused'; refusal: Refusal } {
  return { type: 'refused', refusal: { type, reason } };
}

export function describeWhy(why: Refusal): string {
  if (why.type !== 'notLeader') return why.reason;
  return why.leader === NO_NODE ? 'no leader' : `node ${why.leader} leads`;
}

/** A refusal that promises nothing applied, unless an earlier attempt may have. */
export function unlessApplied(call: Call, answer: CallOutcome): CallOutcome {
  if (answer.type !== 'refused' || !changes(call) || !call.mayHaveApplied) return answer;
  return refused(
    'outcomeUnknown',
    `an earlier attempt may have applied (${describeWhy(answer.refusal)})`,
  );
}

/** What a call that runs out of time says: a change that may have applied says so. */
export function lastWord(call: Call, why: Refusal): CallOutcome {
  if (changes(call) && (call.mayHaveApplied || call.attemptMayApply)) {
    return refused('outcomeUnknown', `no outcome in time (${describeWhy(why)})`);
  }
  return { type: 'refused', refusal: why };
}

/** The broken variant's invented answer: what a write that applied cleanly returns. */
export function madeUpResult(op: KvOp): KvResult {
  switch (op.f) {
    case 'put':
      return { f: 'put', revision: 0, version: 1 };
    case 'delete':
      return { f: 'delete', deleted: true, revision: 0 };
    case 'cas':
    case 'casVersion':
      return { f: 'cas', ok: true, entry: null, revision: 0 };
    case 'get':
    case 'list':
      return { f: 'list', entries: [], more: false, revision: 0 };
    default:
      // The etcd operations: a clean answer of their shape matters less than a wrong one.
      return { f: 'leaseCheckpoint', revision: 0 };
  }
}
