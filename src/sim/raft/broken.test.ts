import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { captureOutput } from '../../cli/testing/capture-output.ts';
import { parseFaults } from '../nemesis.ts';
import type { AnySimProtocol } from '../protocols.ts';
import { type RunResult, runSimulation } from '../run.ts';
import { parseReplay } from '../testing/replay.ts';
import { brokenVariant } from '../variants.ts';

const output = captureOutput();

// Proof that the sweep's checks bite: the same sweep as `quorate sim raft --faults all`, on
// a Raft that grants votes without the log up-to-date check (the election restriction of
// section 5.4.1), must report a violation, and running its seed again must reproduce it.
// The figure-8 variant (committing earlier terms by counting) needs a schedule too precise
// for random faults to find often; src/raft/hard-cases.test.ts drives it into the checker.
const broken = brokenVariant('raft-vote-ignoring-logs');

const SEEDS_MAX = 300;

function allFaults() {
  const faults = parseFaults('all', ['membership']);
  if (!faults.ok) throw new Error(faults.error);
  return faults.faults;
}

/** The first seed of `quorate sim <protocol> --nodes N --faults all` that reports a violation. */
function firstViolation(protocol: AnySimProtocol, nodes: number): RunResult {
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
const readsIgnoringHints = brokenVariant('raft-reads-ignoring-hints');

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
const earlyForwardAnswers = brokenVariant('raft-router-answers-forwarded-writes-early');

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
const sessionlessReforwards = brokenVariant('raft-router-reforwards-writes-without-session');

describe('a call router that re-forwards writes without their session', () => {
  it('is caught by the 5-node all-faults sweep, and its printed replay command reproduces it', async () => {
    const caught = firstViolation(sessionlessReforwards, 5);
    expect(caught.message).toContain('not linearizable');
    const again = runSimulation(sessionlessReforwards, parseReplay(caught.replay));
    expect([again.verdict, again.message]).toEqual(['violation', caught.message]);
    // The command as printed, run by the CLI: it names the variant, which the CLI knows.
    const command = /^npx quorate (.*)$/.exec(caught.replay)?.[1];
    expect(command).toMatch(/^sim raft-router-reforwards-writes-without-session /);
    expect(await main(['node', 'quorate', ...(command ?? '').split(' ')])).toBe(1);
    expect(output.text()).toContain(caught.message);
    expect(output.text()).toContain(caught.replay);
  }, 600_000);
});

// The lessor: a new leader must restart every lease's countdown, because the keep-alives the
// old leader answered never reached it. One that keeps the deadlines it counted as a
// follower (from when it applied each grant) revokes leases that are being kept alive.
const lessorKeepsDeadlines = brokenVariant('raft-lessor-keeps-deadlines');

describe("a lessor that keeps a follower's lease deadlines when it becomes leader", () => {
  it('is caught by the 5-node all-faults sweep, reproducibly', () => {
    const caught = firstViolation(lessorKeepsDeadlines, 5);
    expect(caught.message).toContain('lease safety');
    const again = runSimulation(lessorKeepsDeadlines, parseReplay(caught.replay));
    expect([again.verdict, again.message]).toEqual(['violation', caught.message]);
    console.log(`lessor-keeps-deadlines caught at seed ${caught.seed}`);
  }, 600_000);
});
