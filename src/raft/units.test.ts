import { describe, expect, it } from 'vitest';
import { defaultRaftOptions, validateRaftOptions } from './config.ts';
import { checkLogMatching, type RaftNodeView, RaftSafetyChecker } from './invariants.ts';
import { RaftLog } from './log.ts';
import { makeConfig } from './membership.ts';
import { Inflights, Progress } from './progress.ts';
import type { Entry, Snapshot } from './types.ts';

const empty: Snapshot = {
  meta: { index: 0, term: 0, config: makeConfig([1, 2, 3]) },
  data: new Uint8Array(),
};
const e = (index: number, term: number): Entry<string> => ({
  index,
  term,
  kind: 'normal',
  data: `${index}`,
});
const logOf = (...terms: number[]) =>
  new RaftLog<string>(
    empty,
    terms.map((t, i) => e(i + 1, t)),
    0,
  );

describe('RaftLog', () => {
  it('checks the previous entry, skips what it already has and truncates a conflicting suffix', () => {
    const log = logOf(1, 1, 2, 2);
    expect(log.tryAppend(5, 2, [])).toEqual({ ok: false, hintIndex: 5, hintTerm: 0 });
    expect(log.tryAppend(4, 3, [])).toEqual({ ok: false, hintIndex: 3, hintTerm: 2 });
    const same = log.tryAppend(2, 1, [e(3, 2), e(4, 2)]);
    expect(same).toMatchObject({ ok: true, lastNewIndex: 4, written: [] });
    const replaced = log.tryAppend(2, 1, [e(3, 3)]);
    expect(replaced).toMatchObject({ ok: true, lastNewIndex: 3 });
    expect(log.lastIndex).toBe(3);
    expect(log.term(3)).toBe(3);
  });

  it('never truncates committed entries and never moves commit back or past the end', () => {
    const log = logOf(1, 1, 1);
    expect(log.commitTo(2)).toBe(true);
    expect(log.commitTo(1)).toBe(false);
    expect(() => log.append([e(2, 2)])).toThrow(/committed/);
    expect(() => log.commitTo(9)).toThrow(/past lastIndex/);
  });

  it('refuses entries whose terms go down or leave a gap', () => {
    const log = logOf(1, 2);
    expect(() => log.append([e(3, 1)])).toThrow(/below previous/);
    expect(() => log.append([e(5, 2)])).toThrow(/gap/);
  });

  it('applies the election restriction (section 5.4.1)', () => {
    const log = logOf(1, 2, 2);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });

  it('compacts under a snapshot, keeping terms at the boundary and the config in force', () => {
    const log = logOf(1, 1, 2, 2);
    log.commitTo(3);
    const snap = log.compact(3, new Uint8Array([1]));
    expect(snap.meta).toMatchObject({ index: 3, term: 2 });
    expect([log.firstIndex, log.lastIndex, log.term(3), log.term(2)]).toEqual([4, 4, 2, undefined]);
    expect(log.lastIndexOfTerm(2, 4)).toBe(4);
    expect(log.lastIndexOfTerm(1, 4)).toBe(0);
  });

  it('slices by count and bytes, always at least one entry', () => {
    const log = logOf(1, 1, 1, 1);
    const size = () => 10;
    expect(log.slice(1, 4, 3, 1000, size).length).toBe(3);
    expect(log.slice(1, 4, 10, 25, size).length).toBe(2);
    expect(log.slice(1, 4, 10, 1, size).length).toBe(1);
  });
});

describe('Progress (etcd-io/raft tracker)', () => {
  it('probe sends one append at a time; replicate pipelines up to the window', () => {
    const pr = new Progress(5, 2, 1000);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(6, 10);
    expect(pr.isPaused()).toBe(true); // waiting for the probe's answer
    pr.maybeUpdate(6);
    pr.becomeReplicate();
    expect(pr.next).toBe(7);
    pr.sentEntries(8, 10);
    pr.sentEntries(9, 10);
    expect(pr.isPaused()).toBe(true); // two in flight
    pr.maybeUpdate(8);
    expect(pr.isPaused()).toBe(false);
    expect(pr.inflights.count).toBe(1);
  });

  it('ignores stale rejections and backs off to the hint on fresh ones', () => {
    const pr = new Progress(10, 4, 1000);
    expect(pr.maybeDecrTo(5, 3)).toBe(false); // not the probe we sent (next - 1 = 9)
    expect(pr.maybeDecrTo(9, 4)).toBe(true);
    expect(pr.next).toBe(4);
    pr.maybeUpdate(3);
    pr.becomeReplicate();
    pr.sentEntries(8, 10);
    expect(pr.maybeDecrTo(2, 1)).toBe(false); // below match: stale
    expect(pr.maybeDecrTo(6, 1)).toBe(true);
    expect(pr.next).toBe(4);
  });

  it('snapshot state pauses everything until the snapshot is acknowledged', () => {
    const pr = new Progress(3, 4, 1000);
    pr.becomeSnapshot(20);
    expect(pr.isPaused()).toBe(true);
    pr.maybeUpdate(20);
    pr.becomeProbe();
    expect(pr.next).toBe(21);
  });

  it('Inflights is bounded by bytes as well as count', () => {
    const f = new Inflights(10, 25);
    f.add(1, 10);
    f.add(2, 10);
    expect(f.full()).toBe(false);
    f.add(3, 10);
    expect(f.full()).toBe(true);
    expect(() => f.add(4, 1)).toThrow(/full/);
    f.freeTo(2);
    expect([f.count, f.bytes]).toEqual([1, 10]);
  });
});

describe('options validation', () => {
  it('rejects settings that cannot work', () => {
    const ok = defaultRaftOptions<string>();
    expect(validateRaftOptions(ok)).toBe(ok);
    expect(() => validateRaftOptions({ ...ok, heartbeatIntervalMs: 200 })).toThrow(/heartbeat/);
    expect(() => validateRaftOptions({ ...ok, electionTimeoutMaxMs: 100 })).toThrow(
      /electionTimeoutMax/,
    );
    expect(() => validateRaftOptions({ ...ok, inflightMsgsMax: 0 })).toThrow(/inflightMsgsMax/);
    expect(() => validateRaftOptions({ ...ok, leaseReads: true, checkQuorum: false })).toThrow(
      /checkQuorum/,
    );
  });
});

describe('safety checker', () => {
  const view = (
    id: number,
    role: 'leader' | 'follower',
    term: number,
    commit: number,
    ...terms: number[]
  ): RaftNodeView<string> => ({
    status: { id, role, term, commit },
    log: logOf(...terms),
  });

  it('reports two leaders in one term', () => {
    const c = new RaftSafetyChecker();
    expect(c.observe([view(1, 'leader', 2, 0, 1)])).toEqual([]);
    expect(c.observe([view(2, 'leader', 2, 0, 1)])[0]).toMatch(/election safety/);
  });

  it('reports logs that agree at an index but differ below it', () => {
    expect(
      checkLogMatching([view(1, 'follower', 3, 0, 1, 2, 3), view(2, 'follower', 3, 0, 1, 1, 3)])[0],
    ).toMatch(/log matching/);
    expect(
      checkLogMatching([view(1, 'follower', 3, 0, 1, 2, 3), view(2, 'follower', 3, 0, 1, 2, 2)]),
    ).toEqual([]);
  });

  it('reports a leader missing a committed entry, and divergent commits', () => {
    const c = new RaftSafetyChecker();
    expect(c.observe([view(1, 'follower', 1, 2, 1, 1)])).toEqual([]);
    expect(c.observe([view(2, 'leader', 2, 0, 1)])[0]).toMatch(/leader completeness/);
    expect(c.observe([view(3, 'follower', 3, 2, 1, 3)])[0]).toMatch(/state machine safety/);
  });

  it('reports out-of-order or divergent application', () => {
    const c = new RaftSafetyChecker();
    expect(c.delivered(1, { kind: 'entry', entry: e(1, 1) })).toEqual([]);
    expect(c.delivered(1, { kind: 'entry', entry: e(3, 1) })[0]).toMatch(/applied index 3 after 1/);
    expect(c.delivered(2, { kind: 'entry', entry: e(1, 2) })[0]).toMatch(/state machine safety/);
  });
});
