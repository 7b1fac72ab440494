import { assert } from '../kernel/assert.ts';
import { enterCommit, myEntry } from './commit.ts';
import type { NodeCtx } from './context.ts';
import { recoveryPlan } from './membership.ts';
import { deliverDatagram, deliverRing, visit } from './operational.ts';
import { newRing } from './ring.ts';
import type { CommitEntry, RingId } from './types.ts';

/**
 * Recovery (paper §4.4): old-ring datagrams some survivor lacks are re-sent in the new ring,
 * then the old ring's rest is delivered (regular, then transitional) and the new one installed.
 */
export function enterRecovery(n: NodeCtx, now: number, entries: readonly CommitEntry[]): void {
  const form = n.forming!;
  n.entries = entries;
  n.tokenAt = now + n.tokenMs;
  n.setState('recovery', form.id);
  const reg = n.regular;
  n.recoveryQueue = [];
  if (reg === undefined) {
    n.plan = undefined;
  } else {
    const plan = recoveryPlan(entries, reg.id);
    n.plan = plan;
    if (plan.survivors.length >= 2 && !n.faults.skipRecovery) {
      n.recoveryQueue = reg.store.heldBetween(plan.low, plan.high);
    }
  }
  if (n.faults.skipRecovery) finishRecovery(n, now);
}

/**
 * Recovery is complete: deliver the old ring's rest (in its regular configuration while
 * contiguous and confirmed, then in the transitional one), then the new regular one.
 */
export function finishRecovery(n: NodeCtx, now: number): void {
  const next = n.forming!;
  const old = n.regular;
  assert(n.recoveryQueue.length === 0, 'Recovery ends with nothing left to re-send');
  if (old !== undefined) {
    const plan = n.plan ?? recoveryPlan(n.entries, old.id);
    const store = old.store;
    for (;;) {
      const s = store.delivered + 1;
      const m = store.get(s);
      if (s > plan.high || m === undefined) break;
      if (m.old === null) {
        if (m.mode === 'safe' && s > old.safeUpTo) break;
        deliverDatagram(n, old.id, m, 'regular');
      }
      store.delivered = s;
    }
    n.out.deliver({
      type: 'config',
      kind: 'transitional',
      ring: old.id,
      members: plan.survivors,
    });
    for (const m of store.heldBetween(store.delivered, plan.high)) {
      if (m.old === null) deliverDatagram(n, old.id, m, 'transitional');
      store.delivered = m.seq;
    }
  }
  n.assembler.clear();
  n.queue.restartHead();
  n.out.deliver({ type: 'config', kind: 'regular', ring: next.id, members: next.members });
  n.regular = next;
  n.forming = undefined;
  n.plan = undefined;
  n.entries = [];
  n.setState('operational', next.id);
  const outside = n.config.members.some((m) => !next.members.includes(m));
  n.mergeAt = next.id.rep === n.id && outside ? now + n.config.mergeMs : Number.POSITIVE_INFINITY;
  deliverRing(n, next);
}

export function formSingleton(n: NodeCtx, now: number): void {
  const id: RingId = { seq: n.ringSeqMax + 1, rep: n.id };
  n.raiseRingSeq(id.seq);
  n.forming = newRing(id, [n.id]);
  enterCommit(n, now);
  enterRecovery(n, now, [myEntry(n)]);
  if (n.state === 'recovery') finishRecovery(n, now);
  const ring = n.regular!;
  visit(n, now, ring, {
    type: 'token',
    ring: id,
    tokenSeq: 0,
    seq: 0,
    aru: 0,
    aruId: 0,
    rtr: [],
    fcc: 0,
    backlog: 0,
    recovery: false,
  });
}
