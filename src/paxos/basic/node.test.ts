import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../kernel/ids.ts';
import { nodeIds } from '../../kernel/ids.ts';
import { ThresholdQuorum } from '../../kernel/quorum.ts';
import { Rng } from '../../kernel/rng.ts';
import { compareProposalIds } from '../ballot.ts';
import { proposalIdOrder, SafetyMonitor } from '../invariants.ts';
import { TestCluster } from '../testing.ts';
import type { BasicUnsafeTestingFaults } from './acceptor.ts';
import { applyBasicPersist, initialBasicDurable } from './durable.ts';
import {
  BASIC_PAXOS_DEFAULTS,
  type BasicPaxosNode as BasicNodeType,
  BasicPaxosNode,
} from './node.ts';
import type { BasicDurable, BasicTypes } from './types.ts';

/** `npm run test:paxos-sweep` multiplies the number of random schedules. */
const SWEEP_FACTOR = Math.max(1, Math.floor(Number(process.env.PAXOS_SWEEP_FACTOR ?? '1')) || 1);

type V = string;

function config(id: NodeId, members: readonly NodeId[], faults?: BasicUnsafeTestingFaults) {
  return {
    ...BASIC_PAXOS_DEFAULTS,
    id,
    members,
    ...(faults === undefined ? {} : { unsafeTestingFaults: faults }),
  };
}

function makeCluster(seed: number, n: number, faults?: BasicUnsafeTestingFaults) {
  const ids = nodeIds(n);
  const rng = Rng.fromSeed(seed);
  const proposed = new Set<string>();
  const monitor = new SafetyMonitor<import('../ballot.ts').ProposalId, V>({
    order: proposalIdOrder,
    quorumFor: () => ThresholdQuorum.majorityOf(ids),
    wasProposed: (_instance, key) => proposed.has(key),
  });
  const cluster = new TestCluster<BasicTypes<V>, BasicDurable<V>, BasicNodeType<V>>({
    ids,
    rng,
    inFlightMax: 500,
    stepMaxMs: 30,
    create: (id, durable) => new BasicPaxosNode<V>(config(id, ids, faults), rng.fork(), durable),
    initialDurable: initialBasicDurable,
    applyPersist: applyBasicPersist,
    observe: (id, node) => {
      const view = node.acceptorView();
      monitor.observeAcceptor(id, {
        promised: view.promised,
        accepted:
          view.accepted === null
            ? []
            : [{ instance: 0, ...view.accepted, ballot: view.accepted.id }],
      });
      const learned = node.learned();
      monitor.observeLearner(id, learned === null ? [] : [[0, learned.value]]);
    },
  });
  const propose = (id: NodeId, client: number, value: V) => {
    proposed.add(JSON.stringify(value));
    cluster.request(id, client, { type: 'propose', value });
  };
  return { cluster, monitor, propose, ids, rng };
}

const allLearned = (cluster: { nodes: Map<NodeId, BasicNodeType<V>> }) =>
  [...cluster.nodes.values()].every((n) => n.learned() !== null);

/** A chaotic run with competing proposers, then a calm phase in which everyone must learn. */
function chaoticRun(seed: number, faults?: BasicUnsafeTestingFaults) {
  const { cluster, monitor, propose, ids, rng } = makeCluster(seed, rng3or5(seed), faults);
  cluster.chaos = {
    duplicateRate: 0.1,
    dropRate: 0.15,
    crashRate: 0.02,
    crashMidPersistRate: 0.05,
    clockStepBackMaxMs: 5_000,
  };
  const proposers = ids.slice(0, 2 + rng.int(ids.length - 1));
  for (const [i, id] of proposers.entries()) propose(id, 100 + i, `v${id}`);
  cluster.runUntil(() => false, 400);
  cluster.chaos = {
    ...cluster.chaos,
    dropRate: 0,
    crashRate: 0,
    crashMidPersistRate: 0,
    duplicateRate: 0,
  };
  for (const id of ids) propose(id, 200 + id, `late${id}`);
  const live = cluster.runUntil(() => allLearned(cluster), 20_000);
  return { monitor, live, cluster };
}

function rng3or5(seed: number): number {
  return seed % 2 === 0 ? 3 : 5;
}

describe('Basic Paxos acceptor (Paxos Made Simple, 2.2)', () => {
  it('persists the promise in the same batch as the reply that depends on it', () => {
    const node = new BasicPaxosNode<V>(config(1, [1, 2, 3]), Rng.fromSeed(1));
    node.receive(10, 2, { type: 'prepare', id: { round: 5, node: 2 } });
    const rd = node.ready();
    expect(rd?.persist).toEqual([{ type: 'promise', id: { round: 5, node: 2 } }]);
    expect(rd?.messages).toEqual([
      { to: 2, msg: { type: 'promise', id: { round: 5, node: 2 }, accepted: null } },
    ]);
  });

  it('NACKs a Prepare equal to or below its promise and an Accept below it, naming the promise', () => {
    const node = new BasicPaxosNode<V>(config(1, [1, 2, 3]), Rng.fromSeed(1));
    const promised = { round: 5, node: 2 };
    node.receive(10, 2, { type: 'prepare', id: promised });
    node.ready();
    node.advance();
    node.receive(11, 3, { type: 'prepare', id: promised });
    node.receive(11, 3, { type: 'prepare', id: { round: 4, node: 3 } });
    node.receive(11, 3, { type: 'accept', id: { round: 5, node: 1 }, value: 'x' });
    const rd = node.ready();
    expect(rd?.persist).toEqual([]);
    expect(rd?.messages.map((m) => m.msg)).toEqual([
      { type: 'nack', id: promised, promised },
      { type: 'nack', id: { round: 4, node: 3 }, promised },
      { type: 'nack', id: { round: 5, node: 1 }, promised },
    ]);
    expect(node.acceptorView().accepted).toBeNull();
  });

  it('accepts at its promise, persists id and value, and reports it in later promises', () => {
    const node = new BasicPaxosNode<V>(config(1, [1, 2, 3]), Rng.fromSeed(1));
    const id = { round: 5, node: 2 };
    node.receive(10, 2, { type: 'prepare', id });
    node.receive(10, 2, { type: 'accept', id, value: 'x' });
    const rd = node.ready();
    expect(rd?.persist).toContainEqual({ type: 'accept', id, value: 'x' });
    node.advance();
    node.receive(12, 3, { type: 'prepare', id: { round: 6, node: 3 } });
    expect(node.ready()?.messages[0]?.msg).toEqual({
      type: 'promise',
      id: { round: 6, node: 3 },
      accepted: { id, value: 'x' },
    });
  });
});

describe('Basic Paxos proposer', () => {
  it('never re-issues an id after a restart with a clock that stepped back', () => {
    let durable = initialBasicDurable<V>();
    const first = new BasicPaxosNode<V>(config(1, [1, 2, 3]), Rng.fromSeed(1), durable);
    first.request(50_000, 7, { type: 'propose', value: 'a' });
    for (const item of first.ready()?.persist ?? []) durable = applyBasicPersist(durable, item);
    const restarted = new BasicPaxosNode<V>(config(1, [1, 2, 3]), Rng.fromSeed(2), durable);
    restarted.request(1_000, 7, { type: 'propose', value: 'a' });
    const ids = (restarted.ready()?.messages ?? []).flatMap((m) =>
      m.msg.type === 'prepare' ? [m.msg.id] : [],
    );
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) expect(compareProposalIds(id, durable.lastProposalId)).toBeGreaterThan(0);
  });

  it('adopts the highest-id accepted value reported by a majority of promises', () => {
    const node = new BasicPaxosNode<V>(config(1, [1, 2, 3]), Rng.fromSeed(1));
    node.request(100, 9, { type: 'propose', value: 'mine' });
    const prepare = node.ready()?.messages.find((m) => m.msg.type === 'prepare')?.msg;
    node.advance();
    expect(prepare?.type).toBe('prepare');
    if (prepare?.type !== 'prepare') return;
    node.receive(101, 2, {
      type: 'promise',
      id: prepare.id,
      accepted: { id: { round: 3, node: 3 }, value: 'theirs' },
    });
    const accepts = node.ready()?.messages.filter((m) => m.msg.type === 'accept') ?? [];
    expect(accepts.map((m) => m.msg)).toEqual([
      { type: 'accept', id: prepare.id, value: 'theirs' },
      { type: 'accept', id: prepare.id, value: 'theirs' },
    ]);
  });

  it('jumps above the NACKed id and backs off for a random time', () => {
    const node = new BasicPaxosNode<V>(config(1, [1, 2, 3]), Rng.fromSeed(1));
    node.request(100, 9, { type: 'propose', value: 'mine' });
    const prepare = node.ready()?.messages.find((m) => m.msg.type === 'prepare')?.msg;
    node.advance();
    if (prepare?.type !== 'prepare') throw new Error('expected a prepare');
    const rival = { round: 9_999, node: 3 };
    node.receive(101, 2, { type: 'nack', id: prepare.id, promised: rival });
    node.ready();
    node.advance();
    const wake = node.deadline();
    expect(wake).toBeGreaterThanOrEqual(101 + BASIC_PAXOS_DEFAULTS.backoffMinMs);
    node.tick(wake);
    const next = node.ready()?.messages.find((m) => m.msg.type === 'prepare')?.msg;
    if (next?.type !== 'prepare') throw new Error('expected a new prepare');
    expect(compareProposalIds(next.id, rival)).toBeGreaterThan(0);
  });
});

describe('Basic Paxos under random schedules', () => {
  it('decides one value everywhere with no faults and no chaos', () => {
    const { cluster, monitor, propose } = makeCluster(7, 3);
    propose(1, 1, 'a');
    expect(cluster.runUntil(() => allLearned(cluster), 2_000)).toBe(true);
    expect(monitor.violations).toEqual([]);
    expect(monitor.chosenValue(0)).toBe('"a"');
    expect(cluster.replies).toContainEqual({
      node: 1,
      client: 1,
      reply: { type: 'chosen', value: 'a' },
    });
  });

  it('stays safe and live over many schedules with drops, duplicates, crashes and clock steps', () => {
    for (let seed = 1; seed <= 150 * SWEEP_FACTOR; seed++) {
      const { monitor, live } = chaoticRun(seed);
      expect({ seed, violations: monitor.violations }).toEqual({ seed, violations: [] });
      expect({ seed, live }).toEqual({ seed, live: true });
    }
  });

  const broken: [string, BasicUnsafeTestingFaults][] = [
    ['an acceptor that replies before persisting', { skipPersistBeforeReply: true }],
    ['an acceptor that accepts below its promise', { acceptBelowPromise: true }],
    ['a proposer that ignores promised values', { ignorePromisedValues: true }],
  ];
  for (const [name, faults] of broken) {
    it(`the checks catch ${name}`, () => {
      let caughtAt = -1;
      for (let seed = 1; seed <= 300 && caughtAt < 0; seed++) {
        if (chaoticRun(seed, faults).monitor.violations.length > 0) caughtAt = seed;
      }
      expect(caughtAt).toBeGreaterThan(0);
    });
  }
});
