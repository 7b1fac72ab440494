import { describe, expect, it } from 'vitest';
import { ThresholdQuorum } from '../../kernel/quorum.ts';
import { defaultMultiKvReplicaOptions } from '../../replica/multipaxos-kv.ts';
import type { RouterUnsafeTestingFaults } from '../../replica/router.ts';
import { genericFaults } from '../nemesis.ts';
import type { AnySimProtocol } from '../protocols.ts';
import { runSimulation } from '../run.ts';
import { parseReplay } from '../testing/replay.ts';
import { basicPaxosSimProtocol } from './basic.ts';
import { fastPaxosSimProtocol } from './fast.ts';
import { multiPaxosSimProtocol } from './multi.ts';

/**
 * Each Paxos protocol has deliberately broken variants (the cores' `unsafeTestingFaults`);
 * a sweep under every fault must catch each one, and the replay it prints must reproduce
 * the same violation. The variants are never registered with the CLI, so the replay's
 * options are parsed and run against the variant itself.
 */
const seedsMax = 300;

const variants: [string, RegExp, AnySimProtocol][] = [
  [
    'Basic Paxos: an acceptor that replies before persisting',
    /promise broken/,
    basic({ skipPersistBeforeReply: true }),
  ],
  [
    'Basic Paxos: an acceptor that accepts below its promise',
    /promise broken/,
    basic({ acceptBelowPromise: true }),
  ],
  [
    'Basic Paxos: a proposer that ignores the values reported in promises',
    /two values chosen|learners disagree/,
    basic({ ignorePromisedValues: true }),
  ],
  [
    'Fast Paxos: an acceptor that replies before persisting',
    /promise broken/,
    erase(
      fastPaxosSimProtocol({
        name: 'fastpaxos',
        description: 'broken',
        recovery: 'coordinated',
        faults: { skipPersistBeforeReply: true },
      }),
    ),
  ],
  [
    'Fast Paxos: fast quorums too small to intersect',
    /two values chosen|learners disagree/,
    erase(
      fastPaxosSimProtocol({
        name: 'fastpaxos',
        description: 'broken',
        recovery: 'coordinated',
        faults: { skipQuorumValidation: true },
        quorums: (m) => ({
          classic: ThresholdQuorum.majorityOf(m),
          fast: ThresholdQuorum.majorityOf(m),
        }),
      }),
    ),
  ],
  [
    'Multi-Paxos: an acceptor that replies before persisting',
    /promise broken/,
    multi({ skipPersistBeforeReply: true }),
  ],
  [
    'Multi-Paxos: a new leader that fills recovered instances with no-ops',
    /two values chosen|learners disagree|not linearizable/,
    multi({ noopOverAccepted: true }),
  ],
  [
    // A follower re-forwards a refused write without its session; the refused copy may still
    // be chosen (a proposer that lost track of it and stepped down answers "not leader"), so
    // the write applies twice.
    'Multi-Paxos: a call router that re-forwards writes without their session',
    /not linearizable/,
    multi({}, { reforwardWritesWithoutSession: true }),
  ],
];

function basic(faults: NonNullable<Parameters<typeof basicPaxosSimProtocol>[0]['faults']>) {
  return erase(basicPaxosSimProtocol({ name: 'paxos', description: 'broken', faults }));
}

function multi(
  faults: NonNullable<Parameters<typeof multiPaxosSimProtocol>[0]['faults']>,
  router?: RouterUnsafeTestingFaults,
) {
  const replica = { ...defaultMultiKvReplicaOptions, snapshotEveryInstances: 64 };
  const settings = { name: 'multipaxos', description: 'broken', replica, faults };
  return erase(multiPaxosSimProtocol(router === undefined ? settings : { ...settings, router }));
}

function erase<T>(p: T): AnySimProtocol {
  return p as unknown as AnySimProtocol;
}

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
