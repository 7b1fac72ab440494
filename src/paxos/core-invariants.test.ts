import { describe, expect, it } from 'vitest';
import { InvariantError } from '../kernel/assert.ts';
import { NO_NODE } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import { ZERO_PROPOSAL_ID } from './ballot.ts';
import { BASIC_PAXOS_DEFAULTS, BasicPaxosNode } from './basic/node.ts';
import {
  type BasicCoreView,
  checkBasicInvariants,
  checkFastInvariants,
  checkMultiInvariants,
  type FastCoreView,
  type MultiCoreView,
} from './core-invariants.ts';
import { initialFastDurable } from './fast/durable.ts';
import { FAST_PAXOS_DEFAULTS, FastPaxosNode } from './fast/node.ts';
import { ZERO_ROUND } from './fast/round.ts';
import { initialMultiDurable } from './multi/durable.ts';
import { MULTI_PAXOS_DEFAULTS, MultiPaxosNode } from './multi/node.ts';

const id = (round: number, node: number) => ({ round, node });
const round = (r: number, node = 1) => ({ id: id(r, node), recovery: false, fast: false });

/** Each healthy view passes; each broken variant breaks exactly one invariant and is caught. */
function expectEachCaught<T>(
  check: (view: T) => void,
  healthy: T,
  broken: readonly [string, Partial<T>][],
): void {
  expect(() => check(healthy)).not.toThrow();
  for (const [why, change] of broken) {
    expect(() => check({ ...healthy, ...change }), why).toThrow(new InvariantError(why));
  }
}

describe('Basic Paxos core invariants', () => {
  const healthy: BasicCoreView<string> = {
    id: 1,
    acceptor: { promised: id(3, 2), accepted: { id: id(2, 1), value: 'a' } },
    proposer: {
      ownValue: { value: 'a' },
      lastProposal: { id: id(2, 1), value: 'a' },
      phase: 'idle',
    },
    learned: false,
    pendingClients: 1,
    pendingClientsMax: 4,
    acceptsBelowPromise: false,
  };

  it('catch each broken variant', () => {
    expectEachCaught(checkBasicInvariants, healthy, [
      [
        'acceptor holds a proposal above its promise',
        { acceptor: { promised: id(1, 1), accepted: { id: id(2, 1), value: 'a' } } },
      ],
      ['a learner whose proposer still runs', { learned: true, pendingClients: 0 }],
      [
        'clients still wait after the value was learned',
        { learned: true, proposer: { ...healthy.proposer, phase: 'done' } },
      ],
      ['more waiting clients than pendingClientsMax', { pendingClients: 5 }],
      [
        "a proposal under another node's id",
        { proposer: { ...healthy.proposer, lastProposal: { id: id(2, 3), value: 'a' } } },
      ],
    ]);
  });

  it('are checked by the node at the end of every input', () => {
    // A disk whose accepted proposal is above its promise: the first input must stop it.
    const durable = {
      promised: id(1, 1),
      accepted: { id: id(5, 2), value: 'a' },
      lastProposalId: ZERO_PROPOSAL_ID,
      learned: null,
    };
    const config = { ...BASIC_PAXOS_DEFAULTS, id: 1, members: [1, 2, 3] };
    const inputs: ((n: BasicPaxosNode<string>) => void)[] = [
      (n) => n.tick(0),
      (n) => n.receive(0, 9, { type: 'decided', value: 'a' }),
      (n) => n.request(0, 7, { type: 'propose', value: 'b' }),
    ];
    for (const input of inputs) {
      const node = new BasicPaxosNode<string>(config, Rng.fromSeed(1), durable);
      expect(() => input(node)).toThrow(/acceptor holds a proposal above its promise/);
    }
    const faulty = { ...config, unsafeTestingFaults: { acceptBelowPromise: true } } as const;
    expect(() =>
      new BasicPaxosNode<string>(faulty, Rng.fromSeed(1), durable).tick(0),
    ).not.toThrow();
  });
});

describe('Fast Paxos core invariants', () => {
  const healthy: FastCoreView<string> = {
    acceptor: { promised: round(3), vote: { round: round(2), value: 'a' } },
    coordinatorPhase: 'idle',
    learned: false,
    pendingClients: 1,
    pendingClientsMax: 4,
  };

  it('catch each broken variant', () => {
    expectEachCaught(checkFastInvariants, healthy, [
      [
        'acceptor voted in a round above its promise',
        { acceptor: { promised: round(1), vote: { round: round(2), value: 'a' } } },
      ],
      ['a learner whose coordinator still runs', { learned: true, pendingClients: 0 }],
      [
        'clients still wait after the value was learned',
        { learned: true, coordinatorPhase: 'done' },
      ],
      ['more waiting clients than pendingClientsMax', { pendingClients: 5 }],
    ]);
  });

  it('are checked by the node at the end of every input', () => {
    const durable = { ...initialFastDurable<string>(), vote: { round: round(4), value: 'a' } };
    expect(durable.promised).toBe(ZERO_ROUND);
    const config = { ...FAST_PAXOS_DEFAULTS, id: 2, members: [1, 2, 3], initialCoordinator: 1 };
    const inputs: ((n: FastPaxosNode<string>) => void)[] = [
      (n) => n.tick(0),
      (n) => n.receive(0, 9, { type: 'decided', value: 'a' }),
      (n) => n.request(0, 7, { type: 'propose', value: 'b' }),
    ];
    for (const input of inputs) {
      const node = new FastPaxosNode<string>(config, Rng.fromSeed(1), durable);
      expect(() => input(node)).toThrow(/acceptor voted in a round above its promise/);
    }
  });
});

describe('Multi-Paxos core invariants', () => {
  const healthy: MultiCoreView = {
    id: 1,
    promised: id(5, 1),
    highestAccepted: id(4, 2),
    lastProposalId: id(5, 1),
    highestSeen: id(5, 1),
    role: 'leader',
    ownBallot: id(5, 1),
    followed: NO_NODE,
    frontier: 7,
    frontierChosen: false,
    snapshotUpTo: 3,
    queued: 2,
    pendingRequestsMax: 8,
  };

  it('catch each broken variant', () => {
    expectEachCaught(checkMultiInvariants, healthy, [
      ['acceptor accepted a ballot above its promise', { highestAccepted: id(6, 2) }],
      ['promised a ballot above the highest seen', { highestSeen: id(4, 9) }],
      ['proposed a ballot above the highest seen', { promised: id(4, 3), highestSeen: id(4, 5) }],
      [
        "the last proposal id is another node's",
        {
          lastProposalId: id(5, 2),
          ownBallot: id(5, 2),
          promised: id(5, 2),
          highestSeen: id(5, 2),
        },
      ],
      ['the frontier is inside the snapshot', { frontier: 3 }],
      ['the frontier instance is chosen but not delivered', { frontierChosen: true }],
      ['a ballot that fits no role', { role: 'follower' }],
      [
        'campaigning or leading under a ballot other than the last proposal id',
        { ownBallot: id(4, 1) },
      ],
      [
        'leading or campaigning below its own promise',
        { promised: id(5, 3), highestSeen: id(5, 3) },
      ],
      [
        'a follower that follows itself',
        { role: 'follower', ownBallot: null, followed: 1, queued: 0 },
      ],
      ['a non-leader queues commands', { role: 'candidate' }],
      ['more queued commands than pendingRequestsMax', { queued: 9 }],
    ]);
  });

  it('are checked by the node at the end of every input', () => {
    const durable = {
      ...initialMultiDurable<string, string>(),
      promised: id(2, 2),
      accepted: new Map([[1, { ballot: id(3, 2), value: [] }]]),
    };
    const config = { ...MULTI_PAXOS_DEFAULTS, id: 1, members: [1, 2, 3] };
    const inputs: ((n: MultiPaxosNode<string, string>) => void)[] = [
      (n) => n.tick(0),
      (n) => n.receive(0, 9, { type: 'catchUp', fromInstance: 1 }),
      (n) => n.request(0, 7, { type: 'read', id: 1 }),
    ];
    for (const input of inputs) {
      const node = new MultiPaxosNode<string, string>(config, Rng.fromSeed(1), durable);
      expect(() => input(node)).toThrow(/acceptor accepted a ballot above its promise/);
    }
  });

  it('a node that has had no input yet asks for a tick at once, and counts from it', () => {
    const node = new MultiPaxosNode<string, string>(
      { ...MULTI_PAXOS_DEFAULTS, id: 1, members: [1, 2, 3] },
      Rng.fromSeed(1),
    );
    expect(node.deadline()).toBe(Number.NEGATIVE_INFINITY);
    node.tick(1_000);
    const due = node.deadline();
    expect(due).toBeGreaterThanOrEqual(1_000 + MULTI_PAXOS_DEFAULTS.electionTimeoutMinMs);
    expect(due).toBeLessThanOrEqual(1_000 + MULTI_PAXOS_DEFAULTS.electionTimeoutMaxMs);
  });
});
