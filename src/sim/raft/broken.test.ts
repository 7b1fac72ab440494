import { describe, expect, it } from 'vitest';
import { defaultReplicaOptions } from '../../replica/raft-kv.ts';
import { parseFaults } from '../nemesis.ts';
import { type RunResult, runSimulation } from '../run.ts';
import { parseReplay } from '../testing/replay.ts';
import { raftSimProtocol } from './plugin.ts';

// Proof that the sweep's checks bite: the same sweep as `quorate sim raft --faults all`, on
// a Raft that grants votes without the log up-to-date check (the election restriction of
// section 5.4.1), must report a violation, and running its seed again must reproduce it.
// The figure-8 variant (committing earlier terms by counting) needs a schedule too precise
// for random faults to find often; src/raft/hard-cases.test.ts drives it into the checker.
const broken = raftSimProtocol({
  name: 'raft-vote-ignoring-logs',
  description: 'test fixture: Raft that votes without comparing logs',
  raft: { unsafeTestingFaults: { voteIgnoringLogs: true } },
  replica: { ...defaultReplicaOptions, snapshotEveryEntries: 200 },
});

const SEEDS_MAX = 300;

function allFaults() {
  const faults = parseFaults('all', ['membership']);
  if (!faults.ok) throw new Error(faults.error);
  return faults.faults;
}

/** The first seed of `quorate sim <protocol> --nodes N --faults all` that reports a violation. */
function firstViolation(protocol: typeof broken, nodes: number): RunResult {
  const faults = allFaults();
  for (let seed = 1; seed <= SEEDS_MAX; seed++) {
    const r = runSimulation(protocol, { seed, nodes, faults });
    if (r.verdict === 'violation') return r;
  }
  throw new Error(`no violation in ${SEEDS_MAX} seeds`);
}

describe('a Raft that votes without comparing logs', () => {
  it('is caught by the 5-node all-faults sweep, reproducibly', () => {
    const caught = firstViolation(broken, 5);
    const again = runSimulation(broken, { seed: caught.seed, nodes: 5, faults: allFaults() });
    expect(again.message).toBe(caught.message);
    expect(caught.replay).toContain(`--seed ${caught.seed}`);
    console.log(`vote-ignoring-logs caught at seed ${caught.seed}: ${caught.message}`);
  }, 600_000);
});

// A follower that forwarded a write answers it from its own apply after a commit hint,
// possibly before the leader knows the write committed; the leader's reads must wait for
// what it hinted. Without that, a client that wrote through a follower sees a later read
// miss its acknowledged write.
const readsIgnoringHints = raftSimProtocol({
  name: 'raft-reads-ignoring-hints',
  description: 'test fixture: Raft whose reads ignore the indexes it hinted',
  raft: {
    commitNoticeDelayMs: 10,
    commitHints: 'origin',
    unsafeTestingFaults: { readsIgnoringHints: true },
  },
  replica: { ...defaultReplicaOptions, snapshotEveryEntries: 200 },
});

describe('a Raft whose reads ignore its commit hints', () => {
  it('is caught by the 3-node all-faults sweep', () => {
    const caught = firstViolation(readsIgnoringHints, 3);
    expect(caught.message).toContain('not linearizable');
    console.log(`reads-ignoring-hints caught at seed ${caught.seed}`);
  }, 600_000);
});

// The call router's own check: a follower that answers a forwarded write the moment it hands
// it to the leader, before its apply or the leader's answer, acknowledges writes that a lost
// message or a crashed leader never applied; a later read misses them.
const earlyForwardAnswers = raftSimProtocol({
  name: 'raft-router-answers-forwarded-writes-early',
  description: 'test fixture: a router that answers forwarded writes before they apply',
  raft: { commitNoticeDelayMs: 10, commitHints: 'origin' },
  replica: { ...defaultReplicaOptions, snapshotEveryEntries: 200 },
  router: { answerForwardedWritesEarly: true },
});

describe('a call router that answers forwarded writes before they apply', () => {
  it('is caught by the 5-node all-faults sweep, reproducibly', () => {
    const caught = firstViolation(earlyForwardAnswers, 5);
    expect(caught.message).toContain('not linearizable');
    const again = runSimulation(earlyForwardAnswers, {
      seed: caught.seed,
      nodes: 5,
      faults: allFaults(),
    });
    expect(again.message).toBe(caught.message);
    expect(caught.replay).toContain(`--seed ${caught.seed}`);
    console.log(`router-answers-forwarded-writes-early caught at seed ${caught.seed}`);
  }, 600_000);
});

// A follower that forwards a write again, after the leader it asked refused it, sends it as
// a fresh write without its session. A refusal does not prove the write unapplied: copies are
// duplicated and delayed, and a leader whose replica lost track of a proposed write (outcome
// unknown) and which then stepped down answers "not leader" while the entry may still commit.
// The sessionless copy then applies a second time, and a read sees the write's value come
// back after a later write replaced it.
const sessionlessReforwards = raftSimProtocol({
  name: 'raft-router-reforwards-writes-without-session',
  description: 'test fixture: a router that re-forwards writes without their session',
  raft: { commitNoticeDelayMs: 10, commitHints: 'origin' },
  replica: { ...defaultReplicaOptions, snapshotEveryEntries: 200 },
  router: { reforwardWritesWithoutSession: true },
});

describe('a call router that re-forwards writes without their session', () => {
  it('is caught by the 5-node all-faults sweep, and its replay reproduces it', () => {
    const caught = firstViolation(sessionlessReforwards, 5);
    expect(caught.message).toContain('not linearizable');
    const again = runSimulation(sessionlessReforwards, parseReplay(caught.replay));
    expect([again.verdict, again.message]).toEqual(['violation', caught.message]);
    console.log(`router-reforwards-writes-without-session caught: ${caught.replay}`);
  }, 600_000);
});
