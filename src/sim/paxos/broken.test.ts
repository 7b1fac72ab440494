import { describe, expect, it } from 'vitest';
import { genericFaults } from '../nemesis.ts';
import type { AnySimProtocol } from '../protocols.ts';
import { runSimulation } from '../run.ts';
import { parseReplay } from '../testing/replay.ts';
import { brokenVariant } from '../variants.ts';

/**
 * Each Paxos protocol has deliberately broken variants (the cores' `unsafeTestingFaults`);
 * a sweep under every fault must catch each one, and the replay it prints must reproduce
 * the same violation. The variants are registered by name (src/sim/variants.ts), so the
 * replay each prints runs from the CLI as well.
 */
const seedsMax = 300;

const variants: [string, RegExp, AnySimProtocol][] = [
  [
    'Basic Paxos: an acceptor that replies before persisting',
    /promise broken/,
    brokenVariant('paxos-replies-before-persisting'),
  ],
  [
    'Basic Paxos: an acceptor that accepts below its promise',
    /promise broken/,
    brokenVariant('paxos-accepts-below-promise'),
  ],
  [
    'Basic Paxos: a proposer that ignores the values reported in promises',
    /two values chosen|learners disagree/,
    brokenVariant('paxos-ignores-promised-values'),
  ],
  [
    'Fast Paxos: an acceptor that replies before persisting',
    /promise broken/,
    brokenVariant('fastpaxos-replies-before-persisting'),
  ],
  [
    'Fast Paxos: fast quorums too small to intersect',
    /two values chosen|learners disagree/,
    brokenVariant('fastpaxos-small-fast-quorums'),
  ],
  [
    'Multi-Paxos: an acceptor that replies before persisting',
    /promise broken/,
    brokenVariant('multipaxos-replies-before-persisting'),
  ],
  [
    'Multi-Paxos: a new leader that fills recovered instances with no-ops',
    /two values chosen|learners disagree|not linearizable/,
    brokenVariant('multipaxos-noops-over-accepted'),
  ],
  [
    // A follower re-forwards a refused write without its session; the refused copy may still
    // be chosen (a proposer that lost track of it and stepped down answers "not leader"), so
    // the write applies twice.
    'Multi-Paxos: a call router that re-forwards writes without their session',
    /not linearizable/,
    brokenVariant('multipaxos-router-reforwards-writes-without-session'),
  ],
  [
    // A new leader keeps the lease deadlines it counted as a follower instead of restarting
    // them, and revokes a lease the old leader's keep-alives kept alive.
    'Multi-Paxos: a lessor that keeps lease deadlines across a failover',
    /lease safety/,
    brokenVariant('multipaxos-lessor-keeps-deadlines'),
  ],
];

describe('the sweep catches each deliberately broken Paxos variant', () => {
  for (const [name, expected, protocol] of variants) {
    it(name, () => {
      let caught: ReturnType<typeof runSimulation> | undefined;
      for (let seed = 1; seed <= seedsMax && caught === undefined; seed++) {
        const r = runSimulation(protocol, { seed, nodes: 5, faults: [...genericFaults] });
        if (r.verdict === 'violation') caught = r;
        else expect({ seed, verdict: r.verdict }).toEqual({ seed, verdict: 'pass' });
      }
      expect(caught, `no violation in ${seedsMax} seeds`).toBeDefined();
      expect(caught!.message).toMatch(expected);
      const again = runSimulation(protocol, parseReplay(caught!.replay));
      expect([again.verdict, again.message]).toEqual(['violation', caught!.message]);
    });
  }
});
