/**
 * Fast Paxos latency in message delays, from a client's send to the learners learning,
 * measured in lockstep (src/paxos/testing.ts: each `deliverAll` is one message delay, so
 * the count is exact and independent of any latency model):
 *
 * - `fast`: one client, fast round open (phase 1 and "any" done): 2 delays expected.
 * - `classic`: a Multi-Paxos leader with phase 1 done, the classic round of the Fast Paxos
 *   paper's comparison (client -> leader -> acceptors -> leader as learner): 3 expected.
 *   Basic Paxos from scratch (phase 1 included) is shown too: 5.
 * - `concurrent k`: k clients (1, 2, 4, 8) send distinct values at the same instant to
 *   every acceptor; each acceptor gets them in its own random order (the worst case for
 *   collisions). Reported: collision rate and delays until every learner learned, per
 *   recovery mode (coordinated: +2 delays, uncoordinated: +1, over a fast round).
 *
 *     npm run bench:fastpaxos   # prints the table, writes bench-results/fastpaxos.json
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { ClientId, NodeId } from '../src/kernel/ids.ts';
import { nodeIds } from '../src/kernel/ids.ts';
import { Rng } from '../src/kernel/rng.ts';
import { applyBasicPersist, initialBasicDurable } from '../src/paxos/basic/durable.ts';
import { BASIC_PAXOS_DEFAULTS, BasicPaxosNode } from '../src/paxos/basic/node.ts';
import type { BasicDurable, BasicTypes } from '../src/paxos/basic/types.ts';
import { FastPaxosClient } from '../src/paxos/fast/client.ts';
import { applyFastPersist, initialFastDurable } from '../src/paxos/fast/durable.ts';
import { FAST_PAXOS_DEFAULTS, FastPaxosNode } from '../src/paxos/fast/node.ts';
import type { FastDurable, FastTypes } from '../src/paxos/fast/types.ts';
import { applyMultiPersist, initialMultiDurable } from '../src/paxos/multi/durable.ts';
import { MULTI_PAXOS_DEFAULTS, MultiPaxosNode } from '../src/paxos/multi/node.ts';
import type { MultiDurable, MultiTypes } from '../src/paxos/multi/types.ts';
import { TestCluster } from '../src/paxos/testing.ts';

const nodes = 5;
const trials = 2_000;
const concurrency = [1, 2, 4, 8];
const delaysMax = 100;

type Recovery = 'coordinated' | 'uncoordinated';

function fastCluster(seed: number, recovery: Recovery) {
  const ids = nodeIds(nodes);
  const rng = Rng.fromSeed(seed);
  const cluster = new TestCluster<FastTypes<string>, FastDurable<string>, FastPaxosNode<string>>({
    ids,
    rng,
    inFlightMax: 100_000,
    stepMaxMs: 10,
    create: (id, durable) =>
      new FastPaxosNode<string>(
        { ...FAST_PAXOS_DEFAULTS, recovery, id, members: ids, initialCoordinator: 1 },
        rng.fork(),
        durable,
      ),
    initialDurable: initialFastDurable,
    applyPersist: applyFastPersist,
  });
  // Open the fast round: phase 1 and "any" happen before any client sends.
  cluster.tickAll(1);
  while (cluster.deliverAll() > 0) {}
  return { cluster, ids, rng };
}

/** Lockstep delays until every node learned; timeouts (fallback rounds) counted apart. */
function delaysUntilLearned(
  cluster: { deliverAll(): number; tickAll(ms: number): void },
  learned: () => boolean,
  startDelays: number,
): { delays: number; timeouts: number } {
  let delays = startDelays;
  let timeouts = 0;
  while (!learned() && delays < delaysMax) {
    if (cluster.deliverAll() > 0) delays++;
    else {
      cluster.tickAll(FAST_PAXOS_DEFAULTS.phaseTimeoutMs);
      timeouts++;
    }
  }
  return { delays, timeouts };
}

interface ConcurrentRow {
  readonly recovery: Recovery;
  readonly proposals: number;
  readonly trials: number;
  readonly collisionRate: number;
  readonly meanDelays: number;
  readonly extraDelaysOverFast: number;
  readonly maxDelays: number;
  readonly fallbackTimeouts: number;
}

function concurrent(recovery: Recovery, k: number): ConcurrentRow {
  let collisions = 0;
  let total = 0;
  let max = 0;
  let timeoutRuns = 0;
  for (let t = 0; t < trials; t++) {
    const { cluster, ids, rng } = fastCluster(1_000 * k + t, recovery);
    const sends: { client: ClientId; to: NodeId; req: FastTypes<string>['request'] }[][] = ids.map(
      () => [],
    );
    for (let c = 0; c < k; c++) {
      const client = 100 + c;
      for (const s of new FastPaxosClient<string>(client, ids).propose(`v${c}`)) {
        sends[s.to - 1]!.push({ client, to: s.to, req: s.request });
      }
    }
    // Delay 1: every request arrives, in an order of its own at each acceptor.
    for (const perNode of sends) {
      for (const s of rng.shuffle(perNode)) cluster.request(s.to, s.client, s.req);
    }
    const all = () => ids.every((id) => cluster.node(id).learned() !== null);
    const { delays, timeouts } = delaysUntilLearned(cluster, all, 1);
    if (cluster.events.some((e) => e.event.type === 'collision')) collisions++;
    if (timeouts > 0) timeoutRuns++;
    total += delays;
    max = Math.max(max, delays);
  }
  const meanDelays = total / trials;
  return {
    recovery,
    proposals: k,
    trials,
    collisionRate: collisions / trials,
    meanDelays,
    extraDelaysOverFast: meanDelays - 2,
    maxDelays: max,
    fallbackTimeouts: timeoutRuns,
  };
}

function fastUncontended(): number {
  const { cluster, ids } = fastCluster(1, 'coordinated');
  for (const s of new FastPaxosClient<string>(50, ids).propose('x')) {
    cluster.request(s.to, 50, s.request);
  }
  const first = () => ids.some((id) => cluster.node(id).learned() !== null);
  return delaysUntilLearned(cluster, first, 1).delays;
}

/** A Multi-Paxos leader with phase 1 done: the classic round with a stable coordinator. */
function classicWithLeader(): { leader: number; allLearners: number } {
  type C = string;
  const ids = nodeIds(nodes);
  const rng = Rng.fromSeed(7);
  const cluster = new TestCluster<
    MultiTypes<C, never>,
    MultiDurable<C, never>,
    MultiPaxosNode<C, never>
  >({
    ids,
    rng,
    inFlightMax: 100_000,
    stepMaxMs: 10,
    create: (id, durable) =>
      new MultiPaxosNode<C, never>(
        { ...MULTI_PAXOS_DEFAULTS, id, members: ids },
        rng.fork(),
        durable,
      ),
    initialDurable: initialMultiDurable,
    applyPersist: applyMultiPersist,
  });
  let leader: NodeId | undefined;
  for (let i = 0; i < 100 && leader === undefined; i++) {
    cluster.tickAll(MULTI_PAXOS_DEFAULTS.electionTimeoutMaxMs);
    while (cluster.deliverAll() > 0) {}
    leader = ids.find((id) => cluster.node(id).isLeader());
  }
  if (leader === undefined) throw new Error('no Multi-Paxos leader elected');
  const chosen = (id: NodeId) => cluster.node(id).commitIndex() > 1;
  cluster.request(leader, 9, { type: 'command', id: 1, command: 'x' }); // delay 1
  let delays = 1;
  while (!chosen(leader)) {
    cluster.deliverAll();
    delays++;
  }
  const atLeader = delays;
  // Followers learn from the commit index on the leader's next accept or heartbeat.
  while (!ids.every(chosen) && delays < delaysMax) {
    if (cluster.deliverAll() === 0) cluster.tickAll(MULTI_PAXOS_DEFAULTS.heartbeatIntervalMs);
    else delays++;
  }
  return { leader: atLeader, allLearners: delays };
}

/** Basic Paxos from scratch: the proposer runs phase 1 for the client's value. */
function basicFromScratch(): number {
  const ids = nodeIds(nodes);
  const rng = Rng.fromSeed(3);
  const cluster = new TestCluster<BasicTypes<string>, BasicDurable<string>, BasicPaxosNode<string>>(
    {
      ids,
      rng,
      inFlightMax: 100_000,
      stepMaxMs: 10,
      create: (id, durable) =>
        new BasicPaxosNode<string>(
          { ...BASIC_PAXOS_DEFAULTS, id, members: ids },
          rng.fork(),
          durable,
        ),
      initialDurable: initialBasicDurable,
      applyPersist: applyBasicPersist,
    },
  );
  cluster.request(1, 9, { type: 'propose', value: 'x' });
  const learned = () => ids.some((id) => cluster.node(id).learned() !== null);
  return delaysUntilLearned(cluster, learned, 1).delays;
}

const fast = fastUncontended();
const classic = classicWithLeader();
const basic = basicFromScratch();
const rows: ConcurrentRow[] = [];
for (const recovery of ['coordinated', 'uncoordinated'] as const) {
  for (const k of concurrency) rows.push(concurrent(recovery, k));
}

const fmt = (x: number) => x.toFixed(2);
console.log(
  `Fast Paxos, ${nodes} nodes (classic quorum 3, fast quorum 4), lockstep message delays`,
);
console.log(`  fast round, no collision, first learner:       ${fast}`);
console.log(
  `  classic round (Multi-Paxos leader, phase 1 done): ${classic.leader} at the leader, ${classic.allLearners} at every learner`,
);
console.log(`  Basic Paxos from scratch (phase 1 included):   ${basic}`);
console.log(
  `\n  recovery       proposals  collision rate  mean delays  extra vs fast  max  runs needing a timeout`,
);
for (const r of rows) {
  console.log(
    `  ${r.recovery.padEnd(14)} ${String(r.proposals).padStart(9)}  ${fmt(r.collisionRate).padStart(14)}  ${fmt(r.meanDelays).padStart(11)}  ${fmt(r.extraDelaysOverFast).padStart(13)}  ${String(r.maxDelays).padStart(3)}  ${r.fallbackTimeouts}`,
  );
}

mkdirSync('bench-results', { recursive: true });
writeFileSync(
  'bench-results/fastpaxos.json',
  `${JSON.stringify({ nodes, trials, fastUncontended: fast, classic, basicFromScratch: basic, concurrent: rows }, null, 2)}\n`,
);
