import { unreachable } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { KvOp, KvResult } from '../kv/machine.ts';
import { checkKvOp, isReadOp } from '../kv/validate.ts';
import {
  NotLeaderError,
  OverloadedError,
  UnavailableError,
  UnknownOutcomeError,
} from './engine.ts';
import { ApiError } from './errors.ts';

/**
 * Client calls a follower hands to its leader over the peer transport (as etcd forwards
 * MsgProp), instead of relaying the HTTP request: one msgpack frame on a connection that is
 * already open and authenticated, batched with the protocol's own traffic.
 *
 * These travel beside the protocol's messages on the same transport; the host dispatches
 * them before the protocol sees anything. Wire types are append-only.
 */
export type HostMsg = FwdCall | FwdReply | RemovedNotice | Probe;

export interface FwdCall {
  readonly type: 'fwdCall';
  /** Chosen by the caller; echoed in the reply. */
  readonly id: number;
  readonly kind: 'write' | 'read';
  readonly session: number;
  readonly seq: number;
  readonly op: KvOp;
  /** What is left of the caller's deadline; the leader gives up no later. */
  readonly timeoutMs: number;
}

export interface FwdReply {
  readonly type: 'fwdReply';
  readonly id: number;
  readonly outcome: FwdOutcome;
}

/**
 * "You were removed from the cluster": the answer to any message from a member whose
 * removal this node has committed, and the leader's word to a member it just removed.
 */
export interface RemovedNotice {
  readonly type: 'removed';
}

/**
 * Asks nothing: a learner that hears from no leader sends it now and then, so that a peer
 * which removed it can answer `removed` (a learner never campaigns, so it would otherwise
 * never send anything a peer could answer). Everyone else ignores it.
 */
export interface Probe {
  readonly type: 'probe';
}

/** How a forwarded call ended on the leader; each failure maps back to the error it was. */
export type FwdOutcome =
  | { readonly type: 'result'; readonly result: KvResult }
  /** The callee does not lead (any more); `leader` is its hint, 0 when none. */
  | { readonly type: 'notLeader'; readonly leader: NodeId }
  | { readonly type: 'overloaded'; readonly reason: string }
  /** No answer in time, nothing changed (a read, or a write refused until the deadline). */
  | { readonly type: 'unavailable'; readonly reason: string }
  /** A write was proposed but its outcome is unknown; a retry with its session is safe. */
  | { readonly type: 'unknownOutcome'; readonly reason: string }
  /** The call was malformed, or refused as the client's mistake; never proposed. */
  | { readonly type: 'invalid'; readonly reason: string };

export const hostMsgTypes: ReadonlySet<string> = new Set<HostMsg['type']>([
  'fwdCall',
  'fwdReply',
  'removed',
  'probe',
]);

type Checked<V> =
  | { readonly ok: true; readonly value: V }
  | { readonly ok: false; readonly why: string };

/**
 * Checks a decoded `fwdCall` from a peer: authenticated peers are trusted to be who they
 * are, not to be bug-free, and a bad command in the log would reach every replica.
 */
export function checkFwdCall(raw: unknown): Checked<FwdCall> {
  const m = raw as Partial<Record<keyof FwdCall, unknown>>;
  if (!isCount(m.id)) return { ok: false, why: 'id is not a count' };
  if (m.kind !== 'write' && m.kind !== 'read') return { ok: false, why: 'unknown kind' };
  if (!isCount(m.session) || !isCount(m.seq)) return { ok: false, why: 'bad session or seq' };
  if (!isCount(m.timeoutMs) || m.timeoutMs < 1) return { ok: false, why: 'bad timeoutMs' };
  const op = checkKvOp(m.op);
  if (!op.ok) return { ok: false, why: op.why };
  if ((m.kind === 'read') !== isReadOp(op.value)) {
    return { ok: false, why: `op '${op.value.f}' is not a ${m.kind}` };
  }
  const call: FwdCall = {
    type: 'fwdCall',
    id: m.id,
    kind: m.kind,
    session: m.session,
    seq: m.seq,
    op: op.value,
    timeoutMs: m.timeoutMs,
  };
  return { ok: true, value: call };
}

/** Checks a decoded `fwdReply`: a known outcome with its fields (a result is the leader's). */
export function checkFwdReply(raw: unknown): Checked<FwdReply> {
  const m = raw as Partial<Record<keyof FwdReply, unknown>>;
  if (!isCount(m.id)) return { ok: false, why: 'id is not a count' };
  const o = (typeof m.outcome === 'object' && m.outcome !== null ? m.outcome : {}) as Record<
    string,
    unknown
  >;
  const fits =
    o.type === 'result'
      ? typeof o.result === 'object' &&
        o.result !== null &&
        typeof (o.result as { f?: unknown }).f === 'string'
      : o.type === 'notLeader'
        ? isCount(o.leader)
        : typeof o.type === 'string' && failureTypes.has(o.type) && typeof o.reason === 'string';
  if (!fits) return { ok: false, why: `bad outcome ${JSON.stringify(o.type)}` };
  return { ok: true, value: raw as FwdReply };
}

const failureTypes: ReadonlySet<string> = new Set<FwdOutcome['type']>([
  'overloaded',
  'unavailable',
  'unknownOutcome',
  'invalid',
]);

/** The outcome a leader sends back for its host's answer to a forwarded call. */
export function outcomeOf(err: unknown): FwdOutcome {
  const reason = err instanceof Error ? err.message : String(err);
  if (err instanceof NotLeaderError) return { type: 'notLeader', leader: err.leader };
  if (err instanceof OverloadedError) return { type: 'overloaded', reason };
  if (err instanceof UnknownOutcomeError) return { type: 'unknownOutcome', reason };
  if (err instanceof UnavailableError) return { type: 'unavailable', reason };
  if (err instanceof ApiError && err.status === 400) return { type: 'invalid', reason };
  // Anything else is a fault on the leader: what it did to a write is not known.
  return { type: 'unknownOutcome', reason: `the leader failed: ${reason}` };
}

/**
 * The error a follower throws for a failed forwarded call: the one its own engine would have
 * thrown, so the HTTP layer answers exactly as before (429, 503, 504, 400).
 */
export function failureOf(
  outcome: Exclude<FwdOutcome, { type: 'result' } | { type: 'notLeader' }>,
  leader: NodeId,
  kind: 'write' | 'read',
): Error {
  switch (outcome.type) {
    case 'overloaded':
      return new OverloadedError(`node ${leader}: ${outcome.reason}`);
    case 'unavailable':
      return new UnavailableError(`node ${leader}: ${outcome.reason}`);
    case 'unknownOutcome':
      return kind === 'write'
        ? new UnknownOutcomeError(`node ${leader}: ${outcome.reason}`)
        : new UnavailableError(`node ${leader}: ${outcome.reason}`);
    case 'invalid':
      return new ApiError(400, 'invalid-request', `node ${leader} refused: ${outcome.reason}`);
    default:
      return unreachable(outcome, 'forwarded outcome');
  }
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
