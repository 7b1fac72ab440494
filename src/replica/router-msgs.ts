import { kindSet } from '../kernel/kinds.ts';
import type { KvOp } from '../kv/machine.ts';
import { checkKvOp, isReadOp } from '../kv/validate.ts';
import { type CallAnswer, checkRefusal } from './refusal.ts';

/**
 * The call router's peer protocol (router.ts): client calls a follower hands to its leader
 * over the peer transport (as etcd forwards MsgProp), their outcomes, and the removal
 * notices. They travel beside the replica's own messages on the same transport; the router
 * takes them before the replica sees anything. Wire types are append-only.
 */
export type RouterMsg = FwdCall | FwdReply | RemovedNotice | Probe;

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

/** How a forwarded call ended on the leader: a result or a refusal, as data. */
export interface FwdReply {
  readonly type: 'fwdReply';
  readonly id: number;
  readonly outcome: CallAnswer;
}

/**
 * "You were removed from the cluster": the answer to any message from a member whose
 * removal this node has committed, and every member's word to a member once it commits its
 * removal.
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

export const routerMsgKinds = kindSet<RouterMsg>()({
  fwdCall: true,
  fwdReply: true,
  removed: true,
  probe: true,
});

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

/** Checks a decoded `fwdReply`: a result with its function, or a known refusal. */
export function checkFwdReply(raw: unknown): Checked<FwdReply> {
  const m = raw as Partial<Record<keyof FwdReply, unknown>>;
  if (!isCount(m.id)) return { ok: false, why: 'id is not a count' };
  const o = (typeof m.outcome === 'object' && m.outcome !== null ? m.outcome : {}) as Record<
    string,
    unknown
  >;
  if (o.type === 'result') {
    const result = o.result as { f?: unknown } | null | undefined;
    if (typeof result !== 'object' || result === null || typeof result.f !== 'string') {
      return { ok: false, why: 'a result without its function' };
    }
    return { ok: true, value: raw as FwdReply };
  }
  if (o.type !== 'refused') return { ok: false, why: `bad outcome ${JSON.stringify(o.type)}` };
  const refusal = checkRefusal(o.refusal);
  if (!refusal.ok) return refusal;
  return {
    ok: true,
    value: { type: 'fwdReply', id: m.id, outcome: { type: 'refused', refusal: refusal.value } },
  };
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
