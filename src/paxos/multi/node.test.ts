import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../kernel/ids.ts';
import { NO_NODE, nodeIds } from '../../kernel/ids.ts';
import { ThresholdQuorum } from '../../kernel/quorum.ts';
import { Rng } from '../../kernel/rng.ts';
import type { ProposalId } from '../ballot.ts';
import { proposalIdOrder, SafetyMonitor } from '../invariants.ts';
import { TestCluster } from '../testing.ts';
import { applyMultiPersist, initialMultiDurable } from './durable.ts';
import { recoverInstances } from './leader.ts';
import { MULTI_PAXOS_DEFAULTS, MultiPaxosNode, type MultiUnsafeTestingFaults } from './node.ts';
import type { Batch, MultiDurable, MultiTypes } from './types.ts';

/** `npm run test:paxos-sweep` multiplies the number of random schedules. */
const SWEEP_FACTOR = Math.max(1, Math.floor(Number(process.env.PAXOS_SWEEP_FACTOR ?? '1')) || 1);

type C = string;
type S = { readonly upTo: number; readonly applied: readonly C[] };
type Node = MultiPaxosNode<C, S>;

interface Options {
  readonly n: number;
  readonly faults?: MultiUnsafeTestingFaults;
  readonly pipelineMax?: number;
}

function makeCluster(seed: number, options: Options) {
  const ids = nodeIds(options.n);
  const rng = Rng.fromSeed(seed);
  const proposed = new Set<string>();
  const monitor = new SafetyMonitor<ProposalId, Batch<C>>({
    order: proposalIdOrder,
    quorumFor: () => ThresholdQuorum.majorityOf(ids),
    // A batch was proposed when each of its commands was; the empty batch is the no-op.
    wasProposed: (_i, key) =>
      (JSON.parse(key) as { command: C }[]).every((c) => proposed.has(c.command)),
  });
  const cluster = new TestCluster<MultiTypes<C, S>, MultiDurable<C, S>, Node>({
    ids,
    rng,
    inFlightMax: 5_000,
    stepMaxMs: 20,
    create: (id, durable) =>
      new MultiPaxosNode<C, S>(
        {
          ...MULTI_PAXOS_DEFAULTS,
          id,
          members: ids,
          ...(options.pipelineMax === undefined ? {} : { pipelineMax: options.pipelineMax }),
          ...(options.faults === undefined ? {} : { unsafeTestingFaults: options.faults }),
        },
        rng.fork(),
        durable,
      ),
    initialDurable: initialMultiDurable,
    applyPersist: applyMultiPersist,
    observe: (id, node) => {
      const view = node.acceptorView();
      monitor.observeAcceptor(id, {
        promised: view.promised,
        accepted: view.accepted.map((a) => ({
          instance: a.instance,
          ballot: a.ballot,
          value: a.value,
        })),
      });
      monitor.observeLearner(
        id,
        node.learnedView().map((c) => [c.instance, c.value] as const),
      );
    },
  });
  let id = 0;
  /** Sends a command to whichever node believes it leads; returns whether one accepted it. */
  const submit = (command: C): boolean => {
    const leader = ids.find((id) => cluster.node(id).isLeader());
    if (leader === undefined) return false;
    proposed.add(command);
    cluster.request(leader, 7, { type: 'command', id: ++id, command });
    return true;
  };
  const leaderOf = () => ids.find((id) => cluster.node(id).isLeader());
  return { cluster, monitor, submit, ids, rng, leaderOf };
}

/** The commands each node applied, in order, from its deliveries (snapshots reset state). */
function applied(deliveries: readonly MultiTypes<C, S>['deliver'][]): C[] {
  let state: C[] = [];
  for (const d of deliveries) {
    if (d.type === 'snapshot') state = [...d.data.applied];
    else state.push(...d.value.map((c) => c.command));
  }
  return state;
}

const settle = (cluster: TestCluster<MultiTypes<C, S>, MultiDurable<C, S>, Node>, steps = 3_000) =>
  cluster.runUntil(() => false, steps);

describe('Multi-Paxos recovery rule (Paxos Made Simple, section 3)', () => {
  it('re-proposes the highest-ballot accepted value per instance and fills gaps with no-ops', () => {
    const b = (round: number, node: NodeId): ProposalId => ({ round, node });
    const cmd = (command: C) => [{ client: 1, id: 1, command }];
    const recovered = recoverInstances<C>(
      5,
      [
        [
          { instance: 5, ballot: b(1, 1), value: cmd('old') },
          { instance: 8, ballot: b(2, 2), value: cmd('late') },
        ],
        [{ instance: 5, ballot: b(3, 2), value: cmd('new') }],
        [{ instance: 4, ballot: b(9, 9), value: cmd('already chosen') }],
      ],
      false,
    );
    expect([...recovered]).toEqual([
      [5, cmd('new')],
      [6, []],
      [7, []],
      [8, cmd('late')],
    ]);
  });
});

describe('Multi-Paxos replication', () => {
  it('elects a leader, batches and pipelines commands, and every replica applies the same log', () => {
    const { cluster, monitor, submit, ids } = makeCluster(3, { n: 3, pipelineMax: 2 });
    expect(cluster.runUntil(() => ids.some((id) => cluster.node(id).isLeader()), 5_000)).toBe(true);
    for (let i = 0; i < 20; i++) expect(submit(`c${i}`)).toBe(true);
    settle(cluster);
    const logs = ids.map((id) => applied(cluster.deliveries.get(id) ?? []));
    expect(logs[0]).toEqual(Array.from({ length: 20 }, (_, i) => `c${i}`));
    for (const log of logs) expect(log).toEqual(logs[0]);
    // 20 commands through a pipeline of 2: some instances carry batches of several commands.
    const instances = (cluster.deliveries.get(1) ?? []).filter(
      (d) => d.type === 'chosen' && d.value.length > 0,
    );
    expect(instances.length).toBeLessThan(20);
    expect(monitor.violations).toEqual([]);
  });

  it('serves reads under the lease, and refuses them once the lease is gone', () => {
    const { cluster, leaderOf } = makeCluster(4, { n: 3 });
    cluster.runUntil(() => leaderOf() !== undefined, 5_000);
    settle(cluster, 200);
    const leader = leaderOf() as NodeId;
    cluster.request(leader, 9, { type: 'read', id: 1 });
    expect(cluster.replies.at(-1)?.reply).toMatchObject({ type: 'readOk', id: 1 });
    const follower = nodeIds(3).find((id) => id !== leader) as NodeId;
    cluster.request(follower, 9, { type: 'read', id: 2 });
    expect(cluster.replies.at(-1)?.reply).toEqual({
      type: 'notLeader',
      id: 2,
      leaderHint: leader,
    });
    cluster.isolated.add(leader);
    for (let i = 0; i < 30; i++) cluster.tickAll(10);
    cluster.request(leader, 9, { type: 'read', id: 3 });
    expect(cluster.replies.at(-1)?.reply).toEqual({
      type: 'unavailable',
      id: 3,
      reason: 'noLease',
    });
  });

  it('a follower that granted a lease refuses a rival candidate until it expires', () => {
    const node = new MultiPaxosNode<C, S>(
      { ...MULTI_PAXOS_DEFAULTS, id: 2, members: [1, 2, 3] },
      Rng.fromSeed(1),
    );
    const leaderBallot = { round: 10, node: 1 };
    node.receive(1_000, 1, { type: 'heartbeat', ballot: leaderBallot, seq: 1, commitIndex: 1 });
    node.receive(1_050, 3, { type: 'prepare', ballot: { round: 20, node: 3 }, fromInstance: 1 });
    const early = node.ready()?.messages.map((m) => m.msg.type);
    node.advance();
    expect(early).toEqual(['heartbeatAck', 'nack']);
    node.receive(1_000 + MULTI_PAXOS_DEFAULTS.leaseDurationMs, 3, {
      type: 'prepare',
      ballot: { round: 21, node: 3 },
      fromInstance: 1,
    });
    expect(node.ready()?.messages.map((m) => m.msg.type)).toEqual(['promise']);
  });

  it('tells clients of commands still queued to go elsewhere when it loses leadership', () => {
    const config = { ...MULTI_PAXOS_DEFAULTS, id: 1, members: [1, 2, 3], pipelineMax: 1 };
    const node = new MultiPaxosNode<C, S>(config, Rng.fromSeed(1));
    const drain = () => {
      const rd = node.ready();
      // The batch's arrays are valid only until advance(): copy what the test reads.
      const copy = rd && { messages: [...rd.messages], replies: [...rd.replies] };
      if (rd) node.advance();
      return copy;
    };
    node.tick(0);
    node.tick(10_000);
    const prepare = drain()?.messages.find((m) => m.msg.type === 'prepare')?.msg;
    if (prepare?.type !== 'prepare') throw new Error('expected a campaign');
    node.receive(10_001, 2, {
      type: 'promise',
      ballot: prepare.ballot,
      accepted: [],
      snapshotUpTo: 0,
    });
    expect(node.isLeader()).toBe(true);
    for (let i = 1; i <= 3; i++)
      node.request(10_002, 5, { type: 'command', id: i, command: `c${i}` });
    drain();
    const rival = { round: prepare.ballot.round + 1, node: 3 };
    node.receive(20_000, 3, { type: 'prepare', ballot: rival, fromInstance: 1 });
    expect(node.isLeader()).toBe(false);
    expect(drain()?.replies).toEqual([
      { client: 5, reply: { type: 'notLeader', id: 2, leaderHint: NO_NODE } },
      { client: 5, reply: { type: 'notLeader', id: 3, leaderHint: NO_NODE } },
    ]);
  });

  it('catches up a lagging replica with a snapshot after the leader compacted its log', () => {
    const { cluster, submit, ids, leaderOf } = makeCluster(5, { n: 3 });
    cluster.runUntil(() => leaderOf() !== undefined, 5_000);
    const leader = leaderOf() as NodeId;
    const lagging = ids.find((id) => id !== leader) as NodeId;
    cluster.isolated.add(lagging);
    for (let i = 0; i < 10; i++) submit(`a${i}`);
    settle(cluster, 1_000);
    const upTo = cluster.node(leader).commitIndex() - 1;
    expect(upTo).toBeGreaterThan(0);
    const state = applied(cluster.deliveries.get(leader) ?? []);
    for (const id of ids.filter((id) => id !== lagging)) {
      expect(applied(cluster.deliveries.get(id) ?? [])).toEqual(state);
      cluster.act(id, (node) => node.compact(upTo, { upTo, applied: state }));
    }
    cluster.isolated.delete(lagging);
    submit('after');
    settle(cluster, 2_000);
    const deliveries = cluster.deliveries.get(lagging) ?? [];
    expect(deliveries.some((d) => d.type === 'snapshot')).toBe(true);
    expect(applied(deliveries)).toEqual([...state, 'after']);
  });
});

function chaoticRun(seed: number, options: Options) {
  const { cluster, monitor, submit, rng, leaderOf, ids } = makeCluster(seed, options);
  cluster.chaos = {
    duplicateRate: 0.05,
    dropRate: 0.1,
    crashRate: 0.004,
    crashMidPersistRate: 0.01,
    clockStepBackMaxMs: 2_000,
  };
  let sent = 0;
  for (let i = 0; i < 800; i++) {
    cluster.step();
    if (rng.chance(0.05) && submit(`s${seed}-${sent}`)) sent++;
  }
  cluster.chaos = {
    ...cluster.chaos,
    dropRate: 0,
    crashRate: 0,
    crashMidPersistRate: 0,
    duplicateRate: 0,
  };
  cluster.runUntil(() => leaderOf() !== undefined, 20_000);
  // Like a real client, retry on another leader when the first one lost its leadership.
  const final = `final${seed}`;
  const everywhere = () =>
    ids.every((id) => applied(cluster.deliveries.get(id) ?? []).includes(final));
  let live = false;
  for (let attempt = 0; attempt < 5 && !live; attempt++) {
    cluster.runUntil(() => leaderOf() !== undefined, 5_000);
    live = submit(final) && cluster.runUntil(everywhere, 5_000);
  }
  const recoveries = cluster.events.filter(
    (e) => e.event.type === 'leader' && e.event.recovered > 0,
  );
  return { monitor, live, recoveries: recoveries.length, crashes: cluster.crashes };
}

describe('Multi-Paxos under random schedules', () => {
  it('stays safe and live with drops, duplicates, crashes and clock steps', () => {
    let recoveries = 0;
    let crashes = 0;
    for (let seed = 1; seed <= 24 * SWEEP_FACTOR; seed++) {
      const run = chaoticRun(seed, { n: seed % 2 === 0 ? 3 : 5 });
      const { monitor, live } = run;
      recoveries += run.recoveries;
      crashes += run.crashes;
      expect({ seed, violations: monitor.violations.slice(0, 3) }).toEqual({
        seed,
        violations: [],
      });
      expect({ seed, live }).toEqual({ seed, live: true });
    }
    // The schedules exercised what matters: new leaders finishing half-done instances, restarts.
    expect(recoveries).toBeGreaterThan(10);
    expect(crashes).toBeGreaterThan(10);
  });

  const broken: [string, MultiUnsafeTestingFaults][] = [
    ['a leader that fills recovered instances with no-ops', { noopOverAccepted: true }],
    ['an acceptor that replies before persisting', { skipPersistBeforeReply: true }],
  ];
  for (const [name, faults] of broken) {
    it(`the checks catch ${name}`, () => {
      let caughtAt = -1;
      for (let seed = 1; seed <= 100 && caughtAt < 0; seed++) {
        if (chaoticRun(seed, { n: 3, faults }).monitor.violations.length > 0) caughtAt = seed;
      }
      expect(caughtAt).toBeGreaterThan(0);
    });
  }
});
