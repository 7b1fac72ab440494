import type { NodeCtx } from './context.ts';
import { entriesComplete, liveSet, sameIds } from './membership.ts';
import { forward, visit } from './operational.ts';
import { enterRecovery } from './recovery.ts';
import { COMMIT_ROTATION_1, COMMIT_ROTATION_2, NO_TOKEN_YET, newRing } from './ring.ts';
import { type Commit, type CommitEntry, NO_RING, ringEquals } from './types.ts';

/**
 * Commit (paper §4.3): the representative's commit token circulates twice, first collecting
 * each member's old ring, aru and highest delivered, then telling everyone all of them.
 */
export function myEntry(n: NodeCtx): CommitEntry {
  const r = n.regular;
  if (r === undefined) return { id: n.id, oldRing: NO_RING, aru: 0, highSeq: 0, delivered: 0 };
  const s = r.store;
  return { id: n.id, oldRing: r.id, aru: s.aru, highSeq: s.highSeq, delivered: s.delivered };
}

export function enterCommit(n: NodeCtx, now: number): void {
  n.joinAt = Number.POSITIVE_INFINITY;
  n.consensusAt = Number.POSITIVE_INFINITY;
  n.tokenAt = now + n.tokenMs;
  n.setState('commit', n.forming!.id);
}

export function handleCommit(n: NodeCtx, now: number, c: Commit): void {
  const form = n.forming;
  const mine = form !== undefined && ringEquals(form.id, c.ring);
  if (!c.members.includes(n.id)) {
    n.drop('not-expected');
    return;
  }
  if (c.rotation === 1) {
    if (n.state === 'gather' && c.ring.rep !== n.id) acceptCommit(n, now, c);
    else if (n.state === 'commit' && mine && c.ring.rep === n.id) {
      if (!entriesComplete(c.entries, c.members)) n.drop('malformed');
      else {
        form.forwarded = undefined;
        enterRecovery(n, now, c.entries);
        forward(n, now, form, { ...c, rotation: 2 });
      }
    } else n.drop('not-expected');
    return;
  }
  if (!entriesComplete(c.entries, c.members)) {
    n.drop('malformed');
    return;
  }
  if (n.state === 'commit' && mine && c.ring.rep !== n.id) {
    form.lastTokenSeq = COMMIT_ROTATION_2;
    enterRecovery(n, now, c.entries);
    forward(n, now, form, c);
    return;
  }
  const ring = n.activeRing();
  const back = ring !== undefined && ringEquals(ring.id, c.ring) && c.ring.rep === n.id;
  if (back && ring.lastTokenSeq === NO_TOKEN_YET) {
    // The commit token went round twice: every member is in Recovery; the ring's token starts.
    ring.forwarded = undefined;
    visit(n, now, ring, {
      type: 'token',
      ring: ring.id,
      tokenSeq: 0,
      seq: 0,
      aru: 0,
      aruId: 0,
      rtr: [],
      fcc: 0,
      backlog: 0,
      recovery: n.state === 'recovery',
    });
    return;
  }
  n.drop('not-expected');
}

/** First rotation at a member: the set must be ours, the ring new; add our entry, pass on. */
export function acceptCommit(n: NodeCtx, now: number, c: Commit): void {
  const live = liveSet(n.procs, n.failed);
  if (!sameIds(live, c.members) || c.ring.seq <= n.ringSeqMax) {
    n.drop('not-expected');
    return;
  }
  if (c.entries.some((e) => e.id === n.id)) {
    n.drop('malformed');
    return;
  }
  n.raiseRingSeq(c.ring.seq);
  const form = newRing(c.ring, c.members);
  form.lastTokenSeq = COMMIT_ROTATION_1;
  n.forming = form;
  enterCommit(n, now);
  forward(n, now, form, { ...c, entries: [...c.entries, myEntry(n)] });
}
