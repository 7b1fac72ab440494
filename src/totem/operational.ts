import { assert } from '../kernel/assert.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type { NodeCtx } from './context.ts';
import { allowance } from './flow.ts';
import { beginGather } from './gather.ts';
import { successor } from './membership.ts';
import { finishRecovery } from './recovery.ts';
import { COMMIT_ROTATION_1, COMMIT_ROTATION_2, type Ring } from './ring.ts';
import {
  type Commit,
  type Mcast,
  type Origin,
  type Probe,
  type Release,
  type RingId,
  ringEquals,
  type Token,
  type TotemRequest,
} from './types.ts';

/**
 * Operational (paper §3): publishing, the token visit (retransmit, send within the allowance,
 * aru, forward or hold), delivery in order (agreed, safe), freeing, and merge detection.
 */
export function publish(
  n: NodeCtx,
  now: number,
  client: ClientId,
  req: Extract<TotemRequest, { type: 'publish' }>,
): void {
  const { ref, data } = req;
  if (data.length > n.config.messageBytesMax) {
    const detail = `${data.length} bytes is above messageBytesMax (${n.config.messageBytesMax})`;
    n.out.reply(client, { type: 'refused', ref, reason: 'too-large', detail });
    return;
  }
  if (!n.queue.fits(data.length) || n.awaiting.size >= n.config.sendQueueMessagesMax) {
    const depth = Math.max(n.queue.depth, n.awaiting.size);
    n.out.reply(client, { type: 'backpressure', ref, depth, bytes: n.queue.bytes });
    return;
  }
  const origin: Origin = { node: n.id, boot: n.boot, n: ++n.published };
  n.queue.push(origin, req.mode, data);
  n.awaiting.set(origin.n, { client, ref });
  if (n.held !== undefined && n.state === 'operational') releaseHeld(n, now);
  else askRelease(n);
}

/**
 * After a run of idle visits the representative may be holding the token (it holds after
 * `emptyRotationsBeforeHold` of its own; ours lag its count by at most one, as every member
 * judges the same tokens). A member with something to send then asks it to pass the token
 * on rather than wait out the hold (corosync's token hold cancel does the same): at most
 * once per visit, to the representative only, so a busy ring (no idle visits) pays nothing.
 */
function askRelease(n: NodeCtx): void {
  const ring = n.regular;
  if (n.state !== 'operational' || ring === undefined || ring.members.length === 1) return;
  if (ring.id.rep === n.id || ring.releaseSent) return;
  if (ring.emptyVisits < n.config.emptyRotationsBeforeHold - 1) return;
  ring.releaseSent = true;
  n.out.send(ring.id.rep, { type: 'release', ring: ring.id });
}

/**
 * A member asks us, the representative, to pass on the idle token: at once if we hold it;
 * else the request may have overtaken the token on its way to us, and our next pass-on
 * forwards instead of holding (one rotation at most, then it is spent).
 */
export function handleRelease(n: NodeCtx, now: number, from: NodeId, r: Release): void {
  const ring = n.regular;
  if (ring === undefined || !ringEquals(r.ring, ring.id)) {
    n.drop('foreign-ring');
    return;
  }
  if (n.state !== 'operational' || ring.id.rep !== n.id || !ring.members.includes(from)) {
    n.drop('not-expected');
    return;
  }
  if (n.held !== undefined) releaseHeld(n, now);
  else ring.releaseAsked = true;
}

export function handleMcast(n: NodeCtx, now: number, m: Mcast): void {
  const reg = n.regular;
  const form = n.forming;
  let ring: Ring;
  if (reg !== undefined && ringEquals(m.ring, reg.id)) {
    // Once Recovery has fixed what the old ring delivers, late copies would only make
    // survivors differ; they arrive, if needed, re-sent in the new ring.
    if (n.state === 'recovery') {
      n.drop('not-expected');
      return;
    }
    ring = reg;
  } else if (form !== undefined && ringEquals(m.ring, form.id)) {
    ring = form;
  } else {
    n.drop('foreign-ring');
    return;
  }
  if (!ring.members.includes(m.sender)) {
    n.drop('malformed');
    return;
  }
  if (m.seq > ring.store.aru + n.config.storeSpanMax) {
    n.drop('out-of-window');
    return;
  }
  if (!ring.store.add(m)) {
    n.drop('duplicate');
    return;
  }
  n.observeReceived(ring.id, m.seq);
  const fwd = ring.forwarded;
  if (fwd !== undefined && m.seq > fwd.seq) fwd.evidence = true;
  if (ring === n.activeRing() && ring.members.length > 1) n.tokenAt = now + n.tokenMs;
  if (m.old !== null && ring === form && reg !== undefined && ringEquals(m.old.ring, reg.id)) {
    if (m.old.seq <= (n.plan?.high ?? 0) && reg.store.add(m.old)) {
      n.observeReceived(reg.id, m.old.seq);
    }
  }
  if (n.state === 'operational' && ring === reg) deliverRing(n, ring);
}

/** The next datagram to send at this visit: an old ring's in Recovery, else from the queue. */
export function nextDatagram(n: NodeCtx, ring: Ring, seq: number): Mcast | undefined {
  if (n.state === 'recovery') {
    const old = n.recoveryQueue.shift();
    if (old === undefined) return undefined;
    return { type: 'mcast', ring: ring.id, seq, sender: n.id, mode: old.mode, items: [], old };
  }
  const packed = n.queue.take();
  if (packed === undefined) return undefined;
  return {
    type: 'mcast',
    ring: ring.id,
    seq,
    sender: n.id,
    mode: packed.mode,
    items: packed.items,
    old: null,
  };
}

export function handleToken(n: NodeCtx, now: number, from: NodeId, t: Token): void {
  const ring = n.activeRing();
  if (ring === undefined || !ringEquals(t.ring, ring.id) || n.state === 'commit') {
    n.drop('foreign-ring');
    return;
  }
  if (t.tokenSeq <= ring.lastTokenSeq) {
    // A retransmission of the token we took: tell the sender we are alive.
    if (t.tokenSeq === ring.lastTokenSeq) {
      n.out.send(from, { type: 'ack', ring: ring.id, tokenSeq: t.tokenSeq });
    }
    n.drop('stale-token');
    return;
  }
  visit(n, now, ring, t);
}

/** One token visit (paper §3): resend what others miss, send new, update aru, forward. */
export function visit(n: NodeCtx, now: number, ring: Ring, t: Token): void {
  assert(t.tokenSeq > ring.lastTokenSeq, 'a token is accepted once');
  ring.lastTokenSeq = t.tokenSeq;
  ring.visits++;
  ring.releaseSent = false;
  if (ring.forwarded !== undefined) ring.forwarded.evidence = true;
  n.out.emit({ type: 'token', ring: ring.id, tokenSeq: t.tokenSeq });
  const multi = ring.members.length > 1;
  n.tokenAt = multi ? now + n.tokenMs : Number.POSITIVE_INFINITY;
  if (n.state === 'recovery' && !t.recovery) finishRecovery(n, now);
  const recovering = n.state === 'recovery';
  // The aru stayed at least min(previous, now) for the whole rotation between our visits.
  ring.safeUpTo = Math.max(ring.safeUpTo, Math.min(ring.prevAruIn, t.aru));
  const aruOneRotation = t.aru;
  ring.prevAruIn = t.aru;

  const backlogBefore = recovering ? n.recoveryQueue.length : n.queue.depth;
  const fccOthers = Math.max(0, t.fcc - ring.lastSent);
  const othersBacklog = Math.max(0, t.backlog - ring.lastBacklog);
  const cfg = n.config;
  const budget = allowance(
    cfg.windowSize,
    cfg.maxMessagesPerVisit,
    fccOthers,
    backlogBefore,
    othersBacklog + backlogBefore,
  );

  const rtr: number[] = [];
  let resent = 0;
  for (const s of t.rtr) {
    const m = ring.store.get(s);
    if (m !== undefined && resent < budget) {
      n.broadcast(ring, m);
      resent++;
    } else rtr.push(s);
  }
  let seq = t.seq;
  let sent = 0;
  while (resent + sent < budget) {
    const m = nextDatagram(n, ring, seq + 1);
    if (m === undefined) break;
    seq++;
    sent++;
    ring.store.add(m);
    observeAssigned(n, m);
    n.broadcast(ring, m);
  }
  const skip = new Set(rtr);
  for (const s of ring.store.missing(seq, cfg.retransmitEntriesMax - rtr.length, skip)) {
    rtr.push(s);
  }
  let aru = t.aru;
  let aruId = t.aruId;
  const mine = ring.store.aru;
  if (mine < aru || aruId === n.id || aruId === 0) {
    aru = mine;
    aruId = aru === seq ? 0 : n.id;
  }
  const idle =
    !recovering &&
    resent + sent === 0 &&
    t.rtr.length === 0 &&
    t.aru === t.seq &&
    t.seq === ring.prevSeqOut;
  let recovery = t.recovery;
  if (recovering) {
    const quiet =
      ring.visits >= 2 &&
      othersBacklog === 0 &&
      backlogBefore === 0 &&
      t.aru === t.seq &&
      t.rtr.length === 0 &&
      t.seq === ring.prevSeqOut;
    ring.quietVisits = quiet ? ring.quietVisits + 1 : 0;
  }
  ring.prevSeqOut = seq;
  const backlogAfter = recovering ? n.recoveryQueue.length : n.queue.depth;
  ring.lastSent = resent + sent;
  ring.lastBacklog = backlogAfter;
  if (recovering && ring.quietVisits >= 2) {
    // Everyone holds every re-sent datagram (aru = seq for a full rotation with nothing
    // left to send): Recovery is complete, and the cleared flag tells the others.
    recovery = false;
    finishRecovery(n, now);
  }
  if (n.state === 'operational') {
    deliverRing(n, ring);
    const bound = n.faults.freeOneRotationEarly ? aruOneRotation : ring.safeUpTo;
    freeRing(n, ring, bound);
  }
  n.out.emit({ type: 'visit', ring: ring.id, sent, resent });
  const next: Token = {
    type: 'token',
    ring: ring.id,
    tokenSeq: t.tokenSeq + 1,
    seq,
    aru,
    aruId,
    rtr,
    fcc: fccOthers + resent + sent,
    backlog: othersBacklog + backlogAfter,
    recovery,
  };
  ring.emptyVisits = idle ? ring.emptyVisits + 1 : 0;
  passOn(n, now, ring, next);
}

/** Forwards the token, or keeps it: a singleton ring's, or an idle ring's at its representative. */
export function passOn(n: NodeCtx, now: number, ring: Ring, next: Token): void {
  if (ring.members.length === 1) {
    n.held = next;
    const more = n.queue.depth > 0 || ring.store.delivered < ring.store.highSeq;
    n.holdAt = more ? now : Number.POSITIVE_INFINITY;
    return;
  }
  const idleLong = ring.emptyVisits >= n.config.emptyRotationsBeforeHold;
  const asked = ring.releaseAsked;
  ring.releaseAsked = false;
  if (
    n.state === 'operational' &&
    ring.id.rep === n.id &&
    idleLong &&
    n.queue.depth === 0 &&
    !asked
  ) {
    n.held = next;
    n.holdAt = now + n.holdMs;
    return;
  }
  forward(n, now, ring, next);
}

export function releaseHeld(n: NodeCtx, now: number): void {
  const t = n.held;
  const ring = n.regular;
  if (t === undefined || ring === undefined) return;
  n.held = undefined;
  n.holdAt = Number.POSITIVE_INFINITY;
  if (ring.members.length === 1 || n.queue.depth > 0) visit(n, now, ring, t);
  else forward(n, now, ring, t);
}

export function forward(n: NodeCtx, now: number, ring: Ring, msg: Token | Commit): void {
  const to = successor(ring.members, n.id);
  n.out.send(to, msg);
  const tokenSeq =
    msg.type === 'token'
      ? msg.tokenSeq
      : msg.rotation === 1
        ? COMMIT_ROTATION_1
        : COMMIT_ROTATION_2;
  ring.forwarded = {
    msg,
    to,
    at: now,
    tokenSeq,
    seq: msg.type === 'token' ? msg.seq : 0,
    evidence: false,
    retransmitAt: now + n.retransmitMs,
  };
}

/** Resends the token we passed on until the successor shows it took it (corosync token_retransmit). */
export function maybeRetransmit(n: NodeCtx, now: number): void {
  const fwd = n.activeRing()?.forwarded;
  if (fwd === undefined || fwd.evidence || now < fwd.retransmitAt) return;
  n.out.send(fwd.to, fwd.msg);
  fwd.retransmitAt = now + n.retransmitMs;
}

/** Whether our successor seems never to have taken the token (faster re-forming). */
export function silentSuccessor(n: NodeCtx, now: number): NodeId | undefined {
  const fwd = n.activeRing()?.forwarded;
  // Only the regular token: a commit token is refused, unanswered, by a member that
  // joined another ring, which says nothing about whether it is alive.
  if (fwd === undefined || fwd.evidence || fwd.msg.type !== 'token') return undefined;
  // Older than a token timeout, the silence is ours (a pause), not our successor's.
  const age = now - fwd.at;
  return age >= 2 * n.retransmitMs && age <= n.tokenMs + n.retransmitMs ? fwd.to : undefined;
}

export function observeAssigned(n: NodeCtx, m: Mcast): void {
  if (!n.config.observe) return;
  const completes = m.items.filter((i) => i.part === i.parts - 1).map((i) => i.origin);
  n.out.emit({ type: 'assigned', ring: m.ring, seq: m.seq, completes });
  n.out.emit({ type: 'received', ring: m.ring, seq: m.seq });
}

/** Delivers the regular ring's datagrams in order: agreed when contiguous, safe once safe. */
export function deliverRing(n: NodeCtx, ring: Ring): void {
  const store = ring.store;
  for (;;) {
    const s = store.delivered + 1;
    const m = store.get(s);
    if (m === undefined) {
      if (!n.faults.deliverAcrossGap || s > store.highSeq) return;
      let next = s + 1;
      while (next <= store.highSeq && store.get(next) === undefined) next++;
      if (next > store.highSeq) return;
      store.delivered = next - 1;
      continue;
    }
    if (m.old !== null) {
      store.delivered = s;
      continue;
    }
    if (m.mode === 'safe' && s > ring.safeUpTo) return;
    deliverDatagram(n, ring.id, m, 'regular');
    store.delivered = s;
  }
}

export function deliverDatagram(
  n: NodeCtx,
  ring: RingId,
  m: Mcast,
  phase: 'regular' | 'transitional',
): void {
  for (const item of m.items) {
    const data = n.assembler.add(item);
    if (data === undefined) continue;
    const origin = item.origin;
    n.out.deliver({
      type: 'message',
      ring,
      seq: m.seq,
      origin,
      mode: m.mode,
      data,
      in: phase,
    });
    if (origin.node !== n.id || origin.boot !== n.boot) continue;
    const asker = n.awaiting.get(origin.n);
    if (asker === undefined) continue;
    n.awaiting.delete(origin.n);
    n.out.reply(asker.client, {
      type: 'published',
      ref: asker.ref,
      origin,
      ring,
      seq: m.seq,
    });
  }
}

/** Frees datagrams every member holds (aru for two rotations) that we delivered. */
export function freeRing(n: NodeCtx, ring: Ring, aruBound: number): void {
  const upTo = Math.min(aruBound, ring.store.delivered, ring.store.aru);
  if (ring.store.free(upTo)) n.out.emit({ type: 'freed', ring: ring.id, upTo });
}

export function probeForeignRings(n: NodeCtx, now: number): void {
  const ring = n.regular;
  if (n.state !== 'operational' || ring === undefined) return;
  const probe: Probe = { type: 'probe', ring: ring.id };
  for (const m of n.config.members) if (!ring.members.includes(m)) n.out.send(m, probe);
  n.mergeAt = now + n.config.mergeMs;
}

export function handleProbe(n: NodeCtx, now: number, from: NodeId, p: Probe): void {
  const ring = n.regular;
  if (n.state !== 'operational' || ring === undefined) return;
  if (ring.members.includes(from) || ringEquals(p.ring, ring.id)) return;
  beginGather(n, now, from);
}
