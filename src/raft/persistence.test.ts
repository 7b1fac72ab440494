import { describe, expect, it } from 'vitest';
import { Rng } from '../kernel/rng.ts';
import { defaultRaftOptions } from './config.ts';
import { RaftCore } from './core.ts';
import { applyPersist, initialDurableState } from './durable.ts';
import { makeConfig } from './membership.ts';
import { Network } from './testing.ts';
import type { Entry } from './types.ts';

const entry = (index: number, term: number): Entry<string> => ({
  index,
  term,
  kind: 'normal',
  data: `e${index}`,
});

describe('applyPersist: the one definition of what is durable', () => {
  it('replaces the log suffix from the first entry written', () => {
    const d = initialDurableState<string>(makeConfig([1, 2, 3]));
    applyPersist(d, { kind: 'entries', entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
    applyPersist(d, { kind: 'entries', entries: [entry(2, 2)] });
    expect(d.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(() => applyPersist(d, { kind: 'entries', entries: [entry(5, 2)] })).toThrow(/gap/);
  });

  it('keeps entries after a snapshot only if the log holds its last entry', () => {
    const d = initialDurableState<string>(makeConfig([1]));
    applyPersist(d, { kind: 'entries', entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
    const meta = { index: 2, term: 1, config: makeConfig([1]) };
    applyPersist(d, { kind: 'snapshot', snapshot: { meta, data: new Uint8Array([7]) } });
    expect(d.entries.map((e) => e.index)).toEqual([3]);
    expect(d.hardState.commit).toBe(2);
    const other = { index: 5, term: 3, config: makeConfig([1]) };
    applyPersist(d, { kind: 'snapshot', snapshot: { meta: other, data: new Uint8Array(0) } });
    expect(d.entries).toEqual([]);
    expect(d.snapshot.meta.index).toBe(5);
  });

  it('refuses to move the durable term back', () => {
    const d = initialDurableState<string>(makeConfig([1]));
    applyPersist(d, { kind: 'hardState', state: { term: 3, vote: 1, commit: 0 } });
    expect(() =>
      applyPersist(d, { kind: 'hardState', state: { term: 2, vote: 0, commit: 0 } }),
    ).toThrow();
  });
});

describe('crash and restart (figure 2: persistent state)', () => {
  it('writes the term and vote before the entries they make valid, in every batch', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    const follower = net.core(2);
    follower.receive(net.now, 1, {
      type: 'append',
      term: 7,
      prevIndex: 1,
      prevTerm: 1,
      entries: [{ index: 2, term: 7, kind: 'noop' }],
      commit: 1,
    });
    const rd = follower.ready();
    expect(rd?.persist.map((p) => p.kind)).toEqual(['hardState', 'entries']);
    expect(rd?.persist[0]).toMatchObject({ state: { term: 7 } });
    expect(rd?.messages[0]?.msg).toMatchObject({ type: 'appendReply', success: true, index: 2 });
    follower.advance();
  });

  it('recovers term, vote, log and commit from disk and re-applies from the start', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    for (const v of ['a', 'b', 'c']) net.propose(1, v);
    net.run(100);
    const before = net.core(2).status();
    net.crash(2);
    net.restart(2);
    const after = net.core(2).status();
    expect(after).toMatchObject({
      term: before.term,
      vote: before.vote,
      commit: before.commit,
      lastIndex: before.lastIndex,
    });
    expect(net.appliedData(2)).toEqual(['a', 'b', 'c']);
    expect(after.role).toBe('follower');
  });

  it('restarts from a host that already applied up to appliedIndex without re-delivering', () => {
    const net = new Network<string>({ ids: [1] });
    net.elect(1);
    net.propose(1, 'a');
    net.propose(1, 'b');
    const disk = net.node(1).disk;
    const core = RaftCore.restore(1, disk, defaultRaftOptions<string>(), Rng.fromSeed(1), {
      appliedIndex: 2,
    });
    const rd = core.ready();
    expect(rd?.deliver.map((d) => (d.kind === 'entry' ? d.entry.index : -1))).toEqual([3]);
  });

  it('stays safe when a crash keeps only a prefix of a batch (torn writes)', () => {
    for (let keep = 0; keep <= 3; keep++) {
      const net = new Network<string>({ ids: [1, 2, 3], seed: keep });
      net.elect(1);
      net.propose(1, 'x');
      net.flush(1);
      // Node 2 receives a new-term append: its batch is [hardState, entries, hardState(commit)].
      net.isolate(1);
      net.heal();
      net.core(2).receive(net.now, 3, {
        type: 'append',
        term: 5,
        prevIndex: 1,
        prevTerm: 1,
        entries: [{ index: 2, term: 5, kind: 'noop' }],
        commit: 2,
      });
      net.crashMidBatch(2, keep);
      net.restart(2);
      const s = net.core(2).status();
      expect(s.commit).toBeLessThanOrEqual(s.lastIndex);
      expect(net.core(2).log().lastTerm).toBeLessThanOrEqual(s.term);
    }
  });
});
