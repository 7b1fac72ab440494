import { ThresholdQuorum } from '../kernel/quorum.ts';
import { defaultMultiKvReplicaOptions } from '../replica/multipaxos-kv.ts';
import { defaultReplicaOptions } from '../replica/raft-kv.ts';
import type { RouterUnsafeTestingFaults } from '../replica/router.ts';
import { merkleBrokenEarlyCollect } from './antientropy/merkle.ts';
import { scuttlebuttBrokenGap, scuttlebuttBrokenReuse } from './antientropy/scuttlebutt.ts';
import { basicPaxosSimProtocol } from './paxos/basic.ts';
import { fastPaxosSimProtocol } from './paxos/fast.ts';
import { multiPaxosSimProtocol } from './paxos/multi.ts';
import type { AnySimProtocol } from './protocols.ts';
import { raftSimProtocol } from './raft/plugin.ts';

/**
 * The deliberately broken variants of Raft and Paxos that the broken-variant tests prove the
 * simulator's checks with. Each has a name of its own, and `quorate sim <name>` runs it
 * (they are left out of the protocol list and its help), so the replay command a caught
 * variant prints reproduces the violation from the command line as well as in the test.
 */

type AnyVariant = AnySimProtocol;

function erase<T>(p: T): AnyVariant {
  return p as unknown as AnyVariant;
}

const raftReplica = { ...defaultReplicaOptions, snapshotEveryEntries: 200 };
/** As real nodes run Raft: commit notices held back 10 ms, hints to the forwarding follower. */
const raftAsNodes = { commitNoticeDelayMs: 10, commitHints: 'origin' } as const;

function raftRouter(name: string, description: string, router: RouterUnsafeTestingFaults) {
  return erase(
    raftSimProtocol({ name, description, raft: raftAsNodes, replica: raftReplica, router }),
  );
}

function basic(
  name: string,
  faults: NonNullable<Parameters<typeof basicPaxosSimProtocol>[0]['faults']>,
) {
  return erase(basicPaxosSimProtocol({ name, description: `broken Basic Paxos: ${name}`, faults }));
}

function multi(
  name: string,
  faults: NonNullable<Parameters<typeof multiPaxosSimProtocol>[0]['faults']>,
  router?: RouterUnsafeTestingFaults,
) {
  const replica = { ...defaultMultiKvReplicaOptions, snapshotEveryInstances: 64 };
  const settings = { name, description: `broken Multi-Paxos: ${name}`, replica, faults };
  return erase(multiPaxosSimProtocol(router === undefined ? settings : { ...settings, router }));
}

const list: AnyVariant[] = [
  // Grants votes without the log up-to-date check (the election restriction, section 5.4.1).
  erase(
    raftSimProtocol({
      name: 'raft-vote-ignoring-logs',
      description: 'test fixture: Raft that votes without comparing logs',
      raft: { unsafeTestingFaults: { voteIgnoringLogs: true } },
      replica: raftReplica,
    }),
  ),
  erase(
    raftSimProtocol({
      name: 'raft-reads-ignoring-hints',
      description: 'test fixture: Raft whose reads ignore the indexes it hinted',
      raft: { ...raftAsNodes, unsafeTestingFaults: { readsIgnoringHints: true } },
      replica: raftReplica,
    }),
  ),
  raftRouter(
    'raft-router-answers-forwarded-writes-early',
    'test fixture: a router that answers forwarded writes before they apply',
    { answerForwardedWritesEarly: true },
  ),
  raftRouter(
    'raft-router-reforwards-writes-without-session',
    'test fixture: a router that re-forwards writes without their session',
    { reforwardWritesWithoutSession: true },
  ),
  raftRouter(
    'raft-lessor-keeps-deadlines',
    "test fixture: a new leader's lessor keeps the lease deadlines it counted as a follower",
    { lessorKeepsDeadlines: true },
  ),
  basic('paxos-replies-before-persisting', { skipPersistBeforeReply: true }),
  basic('paxos-accepts-below-promise', { acceptBelowPromise: true }),
  basic('paxos-ignores-promised-values', { ignorePromisedValues: true }),
  erase(
    fastPaxosSimProtocol({
      name: 'fastpaxos-replies-before-persisting',
      description: 'broken Fast Paxos: replies before persisting',
      recovery: 'coordinated',
      faults: { skipPersistBeforeReply: true },
    }),
  ),
  erase(
    fastPaxosSimProtocol({
      name: 'fastpaxos-small-fast-quorums',
      description: 'broken Fast Paxos: fast quorums too small to intersect',
      recovery: 'coordinated',
      faults: { skipQuorumValidation: true },
      quorums: (m) => ({
        classic: ThresholdQuorum.majorityOf(m),
        fast: ThresholdQuorum.majorityOf(m),
      }),
    }),
  ),
  multi('multipaxos-replies-before-persisting', { skipPersistBeforeReply: true }),
  multi('multipaxos-noops-over-accepted', { noopOverAccepted: true }),
  multi(
    'multipaxos-router-reforwards-writes-without-session',
    {},
    {
      reforwardWritesWithoutSession: true,
    },
  ),
  multi('multipaxos-lessor-keeps-deadlines', {}, { lessorKeepsDeadlines: true }),
  // Anti-entropy stores: a gap in deltas, a version reused after a restart, a tombstone
  // collected before every live peer has it.
  erase(scuttlebuttBrokenGap),
  erase(scuttlebuttBrokenReuse),
  erase(merkleBrokenEarlyCollect),
];

/** Every broken variant, by the name `quorate sim` takes. */
export const brokenVariants: ReadonlyMap<string, AnyVariant> = new Map(
  list.map((p) => [p.name, p]),
);

/** The broken variant named `name`; throws for a name that is none (a test's typo). */
export function brokenVariant(name: string): AnyVariant {
  const p = brokenVariants.get(name);
  if (p === undefined) throw new Error(`no broken variant '${name}'`);
  return p;
}
