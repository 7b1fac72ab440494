/**
 * The experiment of van Renesse, Dumitriu, Gough and Chandra, "Efficient Reconciliation
 * and Flow Control for Anti-Entropy Protocols" (2008), on our Scuttlebutt core
 * (src/gossip/antientropy/scuttlebutt.ts), for each ordering: scuttle-depth,
 * scuttle-breadth, precise-oldest, precise-newest.
 *
 * Setup: 128 nodes each owning 64 keys; every node gossips once per second with a random
 * peer (a three-message exchange, delivered at once); the mtu is unlimited until t = 15 s
 * (so the first writes spread freely), then 100 deltas. Each node writes one of its keys
 * at random as a Poisson process of RATE updates/s (env SCUTTLE_BENCH_RATE, default 1),
 * doubled from t = 25 s to 75 s, stopped at 120 s; 140 s in all.
 * - Run "overload": flow control off (the allowed rate can never bind).
 * - Run "flow": flow control on (AIMD, token bucket), and the mtu drops from 100 to 50 at
 *   t = 90 s.
 *
 * Measured every second: staleness of every (holder, owner, key) whose holder lacks the
 * owner's current version, as the time since the first write the holder has not seen;
 * the maximum, the mean over stale mappings, and their number. For the flow run also the
 * backlog (deltas a node could not send on its last exchange with a peer, max over peers)
 * and the allowed rates.
 *
 *     npm run bench:scuttlebutt    # bench-results/scuttlebutt.json and scuttlebutt-*.svg
 *     SCUTTLE_BENCH_NODES=32 npm run bench:scuttlebutt    # a quicker, smaller run
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import {
  SCUTTLE_DEFAULTS,
  SCUTTLE_ORDERINGS,
  type ScuttleConfig,
  ScuttleNode,
  type ScuttleOrdering,
  type ScuttleReply,
} from '../src/gossip/antientropy/scuttlebutt.ts';
import type { NodeId } from '../src/kernel/ids.ts';
import { Rng } from '../src/kernel/rng.ts';
import { linePlot, type Series } from './scuttlebutt-svg.ts';

const NODES = Number(process.env.SCUTTLE_BENCH_NODES ?? 128);
const KEYS = 64;
const RATE = Number(process.env.SCUTTLE_BENCH_RATE ?? 1);
const END_MS = 140_000;
const SLOT_MS = 10;
const MTU_UNLIMITED = 1_000_000;

type Run = 'overload' | 'flow';

interface Sample {
  readonly t: number;
  readonly maxStalenessS: number;
  readonly meanStalenessS: number;
  readonly staleKeys: number;
  readonly backlogMax: number;
  readonly backlogMean: number;
  /** The most (owner, key) mappings any one node lacks the current version of. */
  readonly missingMax: number;
  readonly rateMean: number;
  readonly updatesAccepted: number;
  readonly updatesRefused: number;
}

function rateAt(t: number): number {
  if (t >= 120_000) return 0;
  return t >= 25_000 && t < 75_000 ? 2 * RATE : RATE;
}

function mtuAt(run: Run, t: number): number {
  if (t < 15_000) return MTU_UNLIMITED;
  return run === 'flow' && t >= 90_000 ? 50 : 100;
}

function simulate(ordering: ScuttleOrdering, run: Run, seed: number): Sample[] {
  const rng = Rng.fromSeed(seed);
  const members = Array.from({ length: NODES }, (_, i) => i + 1);
  let now = 0;
  // The network's mtu: the same for sender and receiver at every instant (delivery is
  // instantaneous), read by the core on every exchange.
  const flow =
    run === 'flow' ? {} : { rateInitialPerSecond: 1e9, rateMinPerSecond: 1e9, burstUpdates: 1e9 };
  const nodes = new Map<NodeId, ScuttleNode>();
  for (const id of members) {
    const config: ScuttleConfig = {
      ...SCUTTLE_DEFAULTS,
      ...flow,
      ordering,
      id,
      members,
      get mtuDeltas() {
        return mtuAt(run, now);
      },
    };
    nodes.set(id, new ScuttleNode(config, rng.fork()));
  }
  // owner -> key -> [version, time written][] (ascending)
  const writes = members.map(() => Array.from({ length: KEYS }, () => [] as [number, number][]));
  const offsets = members.map(() => Math.floor(rng.next() * 1_000));
  const queue: [NodeId, NodeId, Parameters<ScuttleNode['receive']>[2]][] = [];
  const replies: ScuttleReply[] = [];
  // holder, owner, key -> version held: kept from what each core delivers, so a sample
  // costs one pass over an array instead of a million map lookups.
  const held = new Float64Array(NODES * NODES * KEYS);
  const drain = (first: ScuttleNode): void => {
    const pending = [first];
    while (pending.length > 0) {
      const node = pending.pop()!;
      for (let rd = node.ready(); rd !== undefined; rd = node.ready()) {
        for (const m of [...rd.early, ...rd.messages]) queue.push([node.id, m.to, m.msg]);
        for (const r of rd.replies) replies.push(r.reply);
        for (const d of rd.deliver) {
          held[((node.id - 1) * NODES + d.owner - 1) * KEYS + Number(d.key.slice(1))] = d.version;
        }
        node.advance();
      }
      while (queue.length > 0) {
        const [from, to, msg] = queue.shift()!;
        const target = nodes.get(to)!;
        target.receive(now, from, msg);
        pending.push(target);
      }
    }
  };
  const samples: Sample[] = [];
  let accepted = 0;
  let refused = 0;
  const value = new Uint8Array(8);
  for (let slot = 0; slot * SLOT_MS <= END_MS; slot++) {
    now = slot * SLOT_MS;
    const p = (rateAt(now) * SLOT_MS) / 1_000;
    for (const id of members) {
      const node = nodes.get(id)!;
      if (p > 0 && rng.chance(p)) {
        const k = rng.int(KEYS);
        node.request(now, 0, { type: 'put', key: `k${k}`, value });
        replies.length = 0;
        drain(node);
        const reply = replies[0];
        if (reply?.type === 'ok') {
          writes[id - 1]![k]!.push([reply.version, now]);
          accepted++;
        } else refused++;
      }
      if (now % 1_000 === offsets[id - 1]! - (offsets[id - 1]! % SLOT_MS)) {
        node.tick(now);
        drain(node);
      }
    }
    if (now % 1_000 === 0 && now > 0) {
      samples.push(measure(now, nodes, members, writes, held, accepted, refused));
      accepted = 0;
      refused = 0;
    }
  }
  return samples;
}

function measure(
  now: number,
  nodes: ReadonlyMap<NodeId, ScuttleNode>,
  members: readonly NodeId[],
  writes: readonly (readonly (readonly [number, number])[])[][],
  held: Float64Array,
  accepted: number,
  refused: number,
): Sample {
  let max = 0;
  let sum = 0;
  let stale = 0;
  const missing = new Array<number>(NODES + 1).fill(0);
  for (const owner of members) {
    const perKey = writes[owner - 1]!;
    for (let k = 0; k < KEYS; k++) {
      const list = perKey[k]!;
      if (list.length === 0) continue;
      const current = list[list.length - 1]![0];
      for (const holder of members) {
        if (holder === owner) continue;
        const has = held[((holder - 1) * NODES + owner - 1) * KEYS + k]!;
        if (has >= current) continue;
        let i = list.length - 1;
        while (i > 0 && list[i - 1]![0] > has) i--;
        const age = (now - list[i]![1]) / 1_000;
        stale++;
        missing[holder]! += 1;
        sum += age;
        if (age > max) max = age;
      }
    }
  }
  let backlogMax = 0;
  let backlogSum = 0;
  let rateSum = 0;
  for (const node of nodes.values()) {
    let b = 0;
    for (const v of node.backlog.values()) b = Math.max(b, v);
    // The core keeps each peer's leftover until the next exchange with that peer; cleared
    // here, the figure is the largest leftover of the exchanges in the last second.
    node.backlog.clear();
    backlogMax = Math.max(backlogMax, b);
    backlogSum += b;
    rateSum += Math.min(node.ratePerSecond, 1e6);
  }
  return {
    t: now / 1_000,
    maxStalenessS: max,
    meanStalenessS: stale === 0 ? 0 : sum / stale,
    staleKeys: stale,
    backlogMax,
    backlogMean: backlogSum / nodes.size,
    missingMax: Math.max(...missing),
    rateMean: rateSum / nodes.size,
    updatesAccepted: accepted,
    updatesRefused: refused,
  };
}

function summary(s: readonly Sample[]) {
  const during = s.filter((x) => x.t > 15 && x.t <= 120);
  const mean = (f: (x: Sample) => number) => during.reduce((a, x) => a + f(x), 0) / during.length;
  const clearAt = s.find((x) => x.t > 120 && x.staleKeys === 0)?.t;
  return {
    maxStalenessS: Math.max(...during.map((x) => x.maxStalenessS)),
    meanOfMeanStalenessS: mean((x) => x.meanStalenessS),
    meanStaleKeys: mean((x) => x.staleKeys),
    staleKeysAt120: s.find((x) => x.t === 120)?.staleKeys,
    allFreshAtS: clearAt ?? null,
    // Bounded backlog after the mtu drop: the worst node's leftover in each 10 s window.
    backlogMaxByWindow: [60, 70, 80, 90, 100, 110].map((from) => ({
      fromS: from,
      toS: from + 10,
      backlogMax: Math.max(
        ...s.filter((x) => x.t > from && x.t <= from + 10).map((x) => x.backlogMax),
      ),
      missingMax: Math.max(
        ...s.filter((x) => x.t > from && x.t <= from + 10).map((x) => x.missingMax),
      ),
    })),
    acceptedPerSecondMean: mean((x) => x.updatesAccepted),
    refusedPerSecondMean: mean((x) => x.updatesRefused),
  };
}

type Result = { summary: ReturnType<typeof summary>; samples: Sample[]; cpuMs: number };
const ORDERINGS: readonly ScuttleOrdering[] = SCUTTLE_ORDERINGS;
const part = process.env.SCUTTLE_BENCH_PART;
mkdirSync('bench-results', { recursive: true });
const partFile = (o: string, run: Run) => `bench-results/scuttlebutt-part-${o}-${run}.json`;
const RUNS = ['overload', 'flow'] as const;

if (part !== undefined) {
  // One (ordering, run): the parent runs the eight as parallel processes.
  const [o, run] = part.split(':') as [ScuttleOrdering, Run];
  const t0 = performance.now();
  const samples = simulate(o, run, 14);
  const cpuMs = Math.round(performance.now() - t0);
  const r: Result = { summary: summary(samples), samples, cpuMs };
  console.log(run, o, JSON.stringify(r.summary), `${cpuMs} ms`);
  writeFileSync(partFile(o, run), JSON.stringify(r));
  process.exit(0);
}

// SCUTTLE_BENCH_MERGE=1 only merges and plots the parts already written.
if (process.env.SCUTTLE_BENCH_MERGE === undefined) {
  await Promise.all(
    ORDERINGS.flatMap((o) =>
      RUNS.map(
        (run) =>
          new Promise<void>((resolve, reject) => {
            const argv = [...process.execArgv, ...process.argv.slice(1)];
            const child = spawn(process.execPath, argv, {
              env: { ...process.env, SCUTTLE_BENCH_PART: `${o}:${run}` },
              stdio: 'inherit',
            });
            child.on('exit', (code) =>
              code === 0 ? resolve() : reject(new Error(`${o} ${run}: exit ${code}`)),
            );
          }),
      ),
    ),
  );
}
const results: Record<Run, Record<string, Result>> = { overload: {}, flow: {} };
for (const o of ORDERINGS) {
  for (const run of RUNS) {
    if (!existsSync(partFile(o, run))) continue;
    results[run][o] = JSON.parse(readFileSync(partFile(o, run), 'utf8')) as Result;
  }
}
for (const run of RUNS) {
  for (const o of Object.keys(results[run]))
    console.log(run, o, JSON.stringify(results[run][o]!.summary));
}

mkdirSync('docs', { recursive: true });
writeFileSync(
  'bench-results/scuttlebutt.json',
  `${JSON.stringify({ nodes: NODES, keys: KEYS, ratePerNodePerSecond: RATE, machine: 'shared, loaded by other jobs', results }, null, 1)}\n`,
);

const markers = (run: Run): [number, string][] => [
  [15, 'mtu 100'],
  [25, 'rate x2'],
  [75, 'rate x1'],
  ...(run === 'flow' ? ([[90, 'mtu 50']] as [number, string][]) : []),
  [120, 'stop'],
];
const plots: [string, string, (x: Sample) => number][] = [
  ['max-staleness', 'maximum staleness (s)', (x) => x.maxStalenessS],
  ['mean-staleness', 'mean staleness of stale keys (s)', (x) => x.meanStalenessS],
  ['stale-keys', 'stale (holder, owner, key) mappings', (x) => x.staleKeys],
];
const files: string[] = [];
for (const run of ['overload', 'flow'] as const) {
  const what =
    run === 'flow' ? 'flow control on, mtu 100 then 50 at 90 s' : 'no flow control, mtu 100';
  for (const [name, label, f] of plots) {
    const series: Series[] = Object.keys(results[run]).map((o) => ({
      name: o,
      points: results[run][o]!.samples.map((x) => [x.t, f(x)] as const),
    }));
    const file = `scuttlebutt-${run}-${name}.svg`;
    writeFileSync(
      `bench-results/${file}`,
      linePlot({
        title: `${NODES} nodes x ${KEYS} keys, ${what}`,
        xLabel: 'time (s)',
        yLabel: label,
        series,
        markers: markers(run),
      }),
    );
    files.push(file);
  }
}
for (const [name, label, f] of [
  ['backlog', 'backlog: max over nodes of deltas left over (deltas)', (x: Sample) => x.backlogMax],
  ['rate', 'mean allowed update rate (updates/s per node)', (x: Sample) => x.rateMean],
  ['missing', 'most stale mappings at one node', (x: Sample) => x.missingMax],
] as const) {
  const series: Series[] = Object.keys(results.flow).map((o) => ({
    name: o,
    points: results.flow[o]!.samples.map((x) => [x.t, f(x)] as const),
  }));
  const file = `scuttlebutt-flow-${name}.svg`;
  writeFileSync(
    `bench-results/${file}`,
    linePlot({
      title: `${NODES} nodes, flow control on, mtu 100 then 50 at 90 s`,
      xLabel: 'time (s)',
      yLabel: label,
      series,
      markers: markers('flow'),
    }),
  );
  files.push(file);
}
if (NODES === 128 && RATE === 1) {
  for (const f of files) copyFileSync(`bench-results/${f}`, `docs/${f}`);
}
console.log(`wrote bench-results/scuttlebutt.json and ${files.length} plots`);
