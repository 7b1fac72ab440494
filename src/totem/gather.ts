import type { NodeId } from '../kernel/ids.ts';
import { enterCommit, myEntry } from './commit.ts';
import type { NodeCtx } from './context.ts';
import { liveSet, notYetAgreed, sortedIds } from './membership.ts';
import { forward, silentSuccessor } from './operational.ts';
import { formSingleton } from './recovery.ts';
import { newRing } from './ring.ts';
import { type Commit, type Join, NO_RING, type RingId } from './types.ts';

/**
 * Gather (paper §4.1, corosync memb_join_process): joins carry the process set and the failed
 * set until every live member states the same sets; the lowest id then forms the ring.
 */
/** Starts (or continues) a membership round; the first join names a silent successor failed. */
export function beginGather(n: NodeCtx, now: number, extra?: NodeId, boot = false): void {
  if (n.state !== 'gather' || boot) {
    n.procs = new Set([n.id, ...(n.regular?.members ?? [])]);
    for (const m of n.forming?.members ?? []) n.procs.add(m);
    n.failed = new Set();
    const silent = silentSuccessor(n, now);
    if (silent !== undefined) n.failed.add(silent);
    n.joins.clear();
    n.consensusRounds = 0;
    n.agreedAt = undefined;
    if (n.regular !== undefined) n.regular.forwarded = undefined;
    n.forming = undefined;
    n.plan = undefined;
    n.recoveryQueue = [];
    n.held = undefined;
    n.holdAt = Number.POSITIVE_INFINITY;
    n.tokenAt = Number.POSITIVE_INFINITY;
    n.mergeAt = Number.POSITIVE_INFINITY;
    n.consensusAt = now + n.consensusMs;
    n.setState('gather', n.regular?.id ?? NO_RING);
  }
  if (extra !== undefined) n.procs.add(extra);
  sendJoin(n, now);
}

export function sendJoin(n: NodeCtx, now: number): void {
  const join: Join = {
    type: 'join',
    sender: n.id,
    procs: sortedIds(n.procs),
    failed: sortedIds(n.failed),
    ringSeq: n.ringSeqMax,
  };
  for (const to of n.config.members) if (to !== n.id) n.out.send(to, join);
  n.joinAt = now + n.config.joinMs;
}

export function handleJoin(n: NodeCtx, now: number, from: NodeId, j: Join): void {
  const known = n.config.members;
  if (j.sender !== from) {
    n.drop('malformed');
    return;
  }
  if (!j.procs.every((p) => known.includes(p)) || !j.failed.every((p) => known.includes(p))) {
    n.drop('unknown-sender');
    return;
  }
  // A join sent before our current ring formed (its ring seq is below the ring's) is stale.
  const ring = n.activeRing() ?? n.regular;
  if (ring?.members.includes(from) && j.ringSeq < ring.id.seq) {
    n.drop('stale-join');
    return;
  }
  // While a ring forms, only one of its own members gathering again stops it; an outsider
  // is merged once the ring is operational (its probe or its next join starts that).
  if ((n.state === 'commit' || n.state === 'recovery') && !ring!.members.includes(from)) {
    n.drop('not-expected');
    return;
  }
  // An outsider that counts us failed is forming without us; merge detection reunites us
  // once it is operational (gathering now would only re-form our ring, again and again).
  if (n.state === 'operational' && j.failed.includes(n.id)) {
    n.drop('not-expected');
    return;
  }
  if (n.state !== 'gather') beginGather(n, now);
  gatherJoin(n, now, j);
}

/** Join processing in Gather (corosync memb_join_process): merge sets, detect consensus. */
export function gatherJoin(n: NodeCtx, now: number, j: Join): void {
  const from = j.sender;
  if (n.failed.has(from)) return;
  if (j.failed.includes(n.id)) {
    // It counts us failed: then it is failed to us, and the two sides form apart.
    n.failed.add(from);
    n.procs.add(from);
    sendJoin(n, now);
    maybeConsensus(n, now);
    return;
  }
  n.joins.set(from, j);
  let changed = false;
  for (const p of j.procs) {
    if (!n.procs.has(p)) {
      n.procs.add(p);
      changed = true;
    }
  }
  // Only a ring-mate's join may count one of our ring-mates failed: an outsider's view of
  // them comes from another ring (or from before a pause) and says nothing about them now.
  const mates = n.regular?.members ?? [];
  const outsider = !mates.includes(from);
  for (const f of j.failed) {
    if (outsider && mates.includes(f)) continue;
    if (!n.failed.has(f)) {
      n.failed.add(f);
      n.procs.add(f);
      changed = true;
    }
  }
  if (changed) sendJoin(n, now);
  maybeConsensus(n, now);
}

export function maybeConsensus(n: NodeCtx, now: number): void {
  if (notYetAgreed(n.id, n.procs, n.failed, n.joins).length > 0) {
    n.agreedAt = undefined;
    return;
  }
  const live = liveSet(n.procs, n.failed);
  if (live[0] !== n.id) {
    n.agreedAt ??= now;
    return;
  }
  if (live.length === 1) {
    formSingleton(n, now);
    return;
  }
  let seq = n.ringSeqMax;
  for (const m of live) seq = Math.max(seq, n.joins.get(m)?.ringSeq ?? 0);
  const id: RingId = { seq: seq + 1, rep: n.id };
  n.raiseRingSeq(id.seq);
  n.forming = newRing(id, live);
  enterCommit(n, now);
  const commit: Commit = {
    type: 'commit',
    ring: id,
    members: live,
    entries: [myEntry(n)],
    rotation: 1,
  };
  forward(n, now, n.forming, commit);
}

export function consensusExpired(n: NodeCtx, now: number): void {
  const pending = notYetAgreed(n.id, n.procs, n.failed, n.joins);
  const live = liveSet(n.procs, n.failed);
  // Members silent all round have failed; one that did answer but still disagrees gets one
  // more round (its sets may have changed at its own timeout, an instant before ours).
  const silent = pending.filter((p) => !n.joins.has(p) || n.consensusRounds > 0);
  if (pending.length > 0) for (const p of silent) n.failed.add(p);
  else if (live[0] !== n.id && live[0] !== undefined) {
    // Agreed, but the representative's commit token never came in a whole round.
    if (n.agreedAt !== undefined && now - n.agreedAt >= n.consensusMs) {
      n.failed.add(live[0]);
    } else {
      n.consensusAt = now + n.consensusMs;
      return;
    }
  }
  n.agreedAt = undefined;
  n.consensusRounds = silent.length < pending.length ? n.consensusRounds + 1 : 0;
  n.joins.clear();
  n.consensusAt = now + n.consensusMs;
  const left = liveSet(n.procs, n.failed);
  if (left.length === 1) {
    formSingleton(n, now);
    return;
  }
  sendJoin(n, now);
  maybeConsensus(n, now);
}
