/**
 * `npm run bench:kv`: our 3-node Raft key-value cluster side by side with a 3-node etcd
 * cluster, both on loopback on this machine in the same run, fsync on, loaded by the same
 * closed-loop generator (loadgen.ts, in its own process) with 100-byte values over 10,000
 * keys. Points: writes and linearizable reads at 1, 16 and 64 clients. Failover: C=16
 * writes, kill -9 of the leader after ~4 s, window = kill to the write that ends the longest
 * gap between successful writes, with a 250 ms client timeout for both systems.
 *
 *   npm run bench:kv -- [--seconds 8] [--warmup 2] [--kills 3] [--only etcd,quorate,multipaxos]
 *                       [--points put:1,put:16,...] [--repeat 3] [--baseline <checkout>]
 *                       [--apis http,grpc] [--loadgens 2] [--grpc-points put:16,get:1,watch]
 *
 * The gRPC column (grpc.ts): in every round, after the HTTP points, the same clusters are
 * driven through etcd's v3 gRPC API (etcd's native one, and quorate's src/server/etcd) by
 * grpc-loadgen.ts split over `--loadgens` processes: put and linearizable range at 1, 16
 * and 64 clients and watch fan-out to 100 watchers, alternating systems the same way, in
 * a table of its own (one per protocol API) with quorate/etcd. `--apis http` leaves it out.
 *
 * `--baseline <checkout>` adds a fourth cluster: our Raft service run by another checkout's
 * `bin/quorate.mjs` (say, a `git worktree` of the commit before a change), alternating with
 * the others point by point, with a quorate/baseline column: a regression then shows in one
 * run instead of in two runs an hour apart on a machine whose speed drifts.
 *
 * The same service on Multi-Paxos (`quorate node --protocol multipaxos`) runs as a third
 * column, for context beside Raft; the targets are Raft's.
 *
 * Both clusters are up for the whole run and the points alternate between them (see
 * benchBoth); in every point the clients sit in the same places relative to each system's
 * leader (see fromFollower); before the first point each gets the same 10 s of untimed load, so that
 * Node's JIT has compiled the hot paths (etcd is compiled ahead of time). Every point runs
 * `--repeat` times (rounds of all points, alternating), and the table shows each metric's
 * median over them: on this machine one 8 s run of the same configuration can be a third
 * faster or slower than the next. Prints a table (ours, etcd, ours/etcd) and writes
 * bench-results/kv.json, every run included.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SystemName } from './adapters.ts';
import {
  describeRun,
  type GrpcPoint,
  type GrpcPointResult,
  type GrpcResults,
  grpcFromFollower,
  grpcPointName,
  parseGrpcPoints,
  parseLoadgens,
  prepareGrpc,
  renderGrpcTable,
  runGrpcPoint,
  summarize,
} from './grpc.ts';
import type { LoadResult, LoadSpec } from './loadgen.ts';
import { epochNow } from './loadgen.ts';
import { type FailoverWindow, failoverWindow, median } from './stats.ts';
import { type CpuUse, cpuUse, snapshot } from './sysmon.ts';
import { type BenchSystem, EtcdSystem, QuorateSystem, stableLeader } from './systems.ts';
import { type Report, renderTable } from './table.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
// Below Linux's ephemeral range (32768-60999 here), so no outgoing connection holds them.
const QUORATE_PORT_BASE = 21379;
const MULTIPAXOS_PORT_BASE = 21479;
const BASELINE_PORT_BASE = 21579;
const LOAD_SLACK_MS = 30_000;
const sleep = (ms: number) => new Promise<void>((wake) => setTimeout(wake, ms));

export interface PointSpec {
  readonly op: 'put' | 'get';
  readonly clients: number;
}

export interface PointResult extends Omit<LoadResult, 'completions'> {
  readonly cpu: CpuUse;
  /** Member (1-based) that led when the point began (client 0 started on the next one). */
  readonly leader: number;
}

export interface KillResult extends FailoverWindow {
  readonly killed: number;
}

type Kill = KillResult | { readonly killed: number; readonly noWrite: true };

/** A point's medians over its runs (the machine is noisy; one run can be an outlier). */
export interface PointSummary {
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly runs: readonly PointResult[];
}

export interface SystemResults {
  readonly points: Record<string, PointSummary>;
  readonly kills: readonly Kill[];
  readonly medianWindowMs: number;
}

type Results = Partial<Record<SystemName, SystemResults>>;

interface AllResults {
  readonly http: Results;
  readonly grpc: GrpcResults;
}

const allPoints: readonly PointSpec[] = [
  { op: 'put', clients: 1 },
  { op: 'put', clients: 16 },
  { op: 'put', clients: 64 },
  { op: 'get', clients: 1 },
  { op: 'get', clients: 16 },
  { op: 'get', clients: 64 },
];

export const pointName = (p: PointSpec): string => `${p.op} C=${p.clients}`;

interface Settings {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly kills: number;
  /** Runs of every point; the table shows each metric's median over them. */
  readonly repeat: number;
  readonly systems: readonly SystemName[];
  readonly points: readonly PointSpec[];
  readonly keys: number;
  readonly valueBytes: number;
  readonly pointTimeoutMs: number;
  /** Another checkout's bin/quorate.mjs, run as the `baseline` system. */
  readonly baselineBin: string | undefined;
  readonly failoverTimeoutMs: number;
  readonly backoffMs: number;
  readonly killAfterMs: number;
  readonly afterKillMs: number;
  /** Untimed load every system gets once before the points (split between puts and gets). */
  readonly jitWarmupMs: number;
  /** Which protocol APIs to drive: our HTTP (etcd's JSON gateway) and etcd's v3 gRPC. */
  readonly apis: readonly ('http' | 'grpc')[];
  /** Load processes each gRPC point is split over. */
  readonly loadgens: number;
  readonly grpcPoints: readonly GrpcPoint[];
}

function parsePoint(text: string): PointSpec {
  const [op, clients] = text.split(':');
  const n = Number(clients);
  if ((op !== 'put' && op !== 'get') || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw new RangeError(`--points takes op:clients (put or get, 1..1024 clients), got ${text}`);
  }
  return { op, clients: n };
}

function baselineBinOf(checkout: string): string {
  const bin = resolve(checkout, 'bin', 'quorate.mjs');
  if (!existsSync(bin)) {
    throw new RangeError(`--baseline takes a quorate checkout; ${bin} does not exist`);
  }
  if (!existsSync(resolve(checkout, 'node_modules'))) {
    throw new RangeError(`--baseline ${checkout} has no node_modules: run npm ci there first`);
  }
  return bin;
}

function settingsFromArgs(): Settings {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '2' },
      kills: { type: 'string', default: '3' },
      repeat: { type: 'string', default: '3' },
      only: { type: 'string' },
      points: { type: 'string' },
      baseline: { type: 'string' },
      apis: { type: 'string', default: 'http,grpc' },
      loadgens: { type: 'string', default: '2' },
      'grpc-points': { type: 'string' },
    },
  });
  const apis = (values.apis ?? '').split(',');
  for (const api of apis) {
    if (api !== 'http' && api !== 'grpc') throw new RangeError(`--apis takes http and grpc`);
  }
  const seconds = Number(values.seconds);
  const warmupSeconds = Number(values.warmup);
  const kills = Number(values.kills);
  if (!(seconds > 0 && seconds <= 600 && warmupSeconds >= 0 && warmupSeconds <= 60)) {
    throw new RangeError('--seconds must be in (0, 600] and --warmup in [0, 60]');
  }
  if (!Number.isInteger(kills) || kills < 0 || kills > 20) throw new RangeError('--kills: 0..20');
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20)
    throw new RangeError('--repeat: 1..20');
  const systems = (values.only ?? 'etcd,quorate,multipaxos').split(',');
  for (const name of systems) {
    if (name !== 'etcd' && name !== 'quorate' && name !== 'multipaxos') {
      throw new RangeError(`--only takes etcd, quorate and multipaxos, got ${name}`);
    }
  }
  const points = values.points === undefined ? allPoints : values.points.split(',').map(parsePoint);
  const baselineBin = values.baseline === undefined ? undefined : baselineBinOf(values.baseline);
  if (baselineBin !== undefined) systems.push('baseline');
  return {
    baselineBin,
    seconds,
    warmupSeconds,
    kills,
    repeat,
    systems: systems as SystemName[],
    points,
    keys: 10_000,
    valueBytes: 100,
    pointTimeoutMs: 5000,
    failoverTimeoutMs: 250,
    backoffMs: 10,
    killAfterMs: 4000,
    afterKillMs: 6000,
    jitWarmupMs: 10_000,
    apis: apis as ('http' | 'grpc')[],
    loadgens: parseLoadgens(values.loadgens),
    grpcPoints: parseGrpcPoints(values['grpc-points']),
  };
}

/** Runs the load generator in its own process; `onStarted` fires when its load begins. */
function spawnLoad(spec: LoadSpec, onStarted?: (at: number) => void): Promise<LoadResult> {
  const args = ['--import', 'tsx', join(here, 'loadgen.ts'), JSON.stringify(spec)];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const limit = spec.warmupMs + spec.durationMs + LOAD_SLACK_MS;
  return new Promise((resolve, reject) => {
    let out = '';
    let result: LoadResult | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), limit);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const line = JSON.parse(out.slice(0, nl)) as LoadResult | { startedAt: number };
        out = out.slice(nl + 1);
        if ('startedAt' in line) onStarted?.(line.startedAt);
        else result = line;
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (result !== undefined) resolve(result);
      else reject(new Error(`load generator exited with ${code} and no result`));
    });
  });
}

function loadSpec(system: BenchSystem, s: Settings, over: Partial<LoadSpec>): LoadSpec {
  return {
    system: system.name,
    endpoints: system.endpoints,
    op: 'put',
    clients: 1,
    warmupMs: s.warmupSeconds * 1000,
    durationMs: s.seconds * 1000,
    keys: s.keys,
    valueBytes: s.valueBytes,
    timeoutMs: s.pointTimeoutMs,
    backoffMs: s.backoffMs,
    keepCompletions: false,
    ...over,
  };
}

/**
 * Client i of a point starts on the i-th member counted from the one after the leader, the
 * same for every system: which member leads is an election's chance, and a lone client on
 * the leader skips the forwarding hop that one on a follower pays, in either system (one
 * run had our client on its leader and etcd's on a follower). Client 0 is on a follower,
 * as a client that does not know the leader usually is.
 */
function fromFollower(endpoints: readonly string[], leaderIndex: number): string[] {
  const n = endpoints.length;
  return endpoints.map((_, i) => endpoints[(leaderIndex + 1 + i) % n] as string);
}

async function runPoint(system: BenchSystem, s: Settings, p: PointSpec): Promise<PointResult> {
  const leaderIndex = await stableLeader(system);
  const leader = leaderIndex + 1;
  const before = snapshot(system.pids());
  const { completions: _, ...result } = await spawnLoad(
    loadSpec(system, s, {
      op: p.op,
      clients: p.clients,
      endpoints: fromFollower(system.endpoints, leaderIndex),
    }),
  );
  const cpu = cpuUse(before, snapshot(system.pids()), result.cpuMs);
  const errors = Object.entries(result.errors).map(([k, v]) => `${k}=${v}`);
  console.log(
    `  ${system.name.padEnd(7)} ${pointName(p).padEnd(9)} ${String(result.opsPerSec).padStart(8)} ops/s` +
      `  p50 ${result.p50Ms} p90 ${result.p90Ms} p99 ${result.p99Ms} p99.9 ${result.p999Ms} ms` +
      `  errors ${errors.join(' ') || 0}` +
      `  cpu% servers ${cpu.serversPct} loadgen ${cpu.loadgenPct} other ${cpu.otherPct}` +
      `  leader m${leader}`,
  );
  return { ...result, cpu, leader };
}

async function runKill(system: BenchSystem, s: Settings): Promise<Kill> {
  await stableLeader(system);
  let startedAt: number | undefined;
  const spec = loadSpec(system, s, {
    clients: 16,
    warmupMs: 0,
    durationMs: s.killAfterMs + s.afterKillMs,
    timeoutMs: s.failoverTimeoutMs,
    keepCompletions: true,
  });
  const load = spawnLoad(spec, (at) => {
    startedAt = at;
  });
  for (let i = 0; i < 500 && startedAt === undefined; i++) await sleep(10);
  if (startedAt === undefined) throw new Error('the failover load did not start');
  await sleep(Math.max(0, startedAt + s.killAfterMs - epochNow()));
  const victim = await stableLeader(system);
  const killAt = epochNow();
  await system.kill(victim);
  const result = await load;
  const window = failoverWindow(result.completions, killAt);
  console.log(
    `  ${system.name.padEnd(7)} kill m${victim + 1}: ` +
      (window === undefined ? 'no write succeeded after the kill' : JSON.stringify(window)),
  );
  await system.restart(victim);
  await sleep(3000);
  return window === undefined ? { killed: victim, noWrite: true } : { killed: victim, ...window };
}

/**
 * Both clusters run side by side and every point alternates between them (who goes first
 * alternates too), so the two see the same machine: on a shared, noisy box that matters
 * more than anything else for the ratio. The idle cluster only sends heartbeats meanwhile.
 */
async function benchBoth(systems: readonly BenchSystem[], s: Settings): Promise<AllResults> {
  for (const system of systems) {
    console.log(`${system.name}: starting`);
    await system.start();
    await stableLeader(system);
  }
  // Every key is written once, so reads find values. Then, as Node compiles hot code to
  // machine code only after it has run a while (without this the first points would measure
  // our interpreter against etcd's compiled Go), every system gets the same untimed load,
  // writes then reads, before any point.
  for (const system of systems) {
    const fill = await spawnLoad(loadSpec(system, s, { op: 'fill', clients: 64, warmupMs: 0 }));
    console.log(`  ${system.name.padEnd(7)} filled ${fill.ok} keys in ${fill.seconds} s`);
    for (const op of ['put', 'get'] as const) {
      const warm = await spawnLoad(
        loadSpec(system, s, { op, clients: 16, warmupMs: 0, durationMs: s.jitWarmupMs / 2 }),
      );
      console.log(`  ${system.name.padEnd(7)} warm-up ${op}: ${warm.ok} ops in ${warm.seconds} s`);
    }
    if (s.apis.includes('grpc')) {
      // The HTTP fill wrote the same keys; the gRPC path's code gets its own JIT warm-up.
      await prepareGrpc(system.grpcEndpoints, false, s.jitWarmupMs);
      console.log(`  ${system.name.padEnd(7)} gRPC warm-up done`);
    }
  }
  const grpcRuns = new Map<string, GrpcPointResult[]>();
  const results = new Map<SystemName, { runs: Map<string, PointResult[]>; kills: Kill[] }>(
    systems.map((x) => [x.name, { runs: new Map(), kills: [] }]),
  );
  const inTurn = (round: number) => (round % 2 === 0 ? systems : [...systems].reverse());
  let round = 0;
  for (let r = 0; r < s.repeat; r++) {
    for (const p of s.apis.includes('http') ? s.points : []) {
      for (const system of inTurn(round++)) {
        const runs = results.get(system.name)?.runs;
        const name = pointName(p);
        const result = await runPoint(system, s, p);
        runs?.set(name, [...(runs.get(name) ?? []), result]);
      }
    }
    for (const p of s.apis.includes('grpc') ? s.grpcPoints : []) {
      for (const system of inTurn(round++)) {
        const endpoints = grpcFromFollower(system.grpcEndpoints, await stableLeader(system));
        const result = await runGrpcPoint(endpoints, p, s);
        console.log(describeRun(system.name, p, result));
        const key = `${system.name} ${grpcPointName(p)}`;
        grpcRuns.set(key, [...(grpcRuns.get(key) ?? []), result]);
      }
    }
  }
  for (let k = 0; k < s.kills; k++) {
    for (const system of inTurn(round++))
      results.get(system.name)?.kills.push(await runKill(system, s));
  }
  const out: Results = {};
  for (const [name, r] of results) {
    const windows = r.kills.map((k) => ('windowMs' in k ? k.windowMs : Number.POSITIVE_INFINITY));
    const points: Record<string, PointSummary> = {};
    for (const [point, runs] of r.runs) {
      points[point] = {
        opsPerSec: median(runs.map((x) => x.opsPerSec)),
        p50Ms: median(runs.map((x) => x.p50Ms)),
        p99Ms: median(runs.map((x) => x.p99Ms)),
        runs,
      };
    }
    out[name] = { points, kills: r.kills, medianWindowMs: median(windows) };
  }
  const grpc: GrpcResults = {};
  for (const system of systems) {
    const points: Record<string, ReturnType<typeof summarize>> = {};
    for (const p of s.grpcPoints) {
      const runs = grpcRuns.get(`${system.name} ${grpcPointName(p)}`);
      if (runs !== undefined) points[grpcPointName(p)] = summarize(runs);
    }
    grpc[system.name] = points;
  }
  return { http: out, grpc };
}

async function main(): Promise<void> {
  const s = settingsFromArgs();
  const grpc = s.apis.includes('grpc');
  const systems: BenchSystem[] = s.systems.map((name) =>
    name === 'etcd'
      ? new EtcdSystem()
      : name === 'quorate'
        ? new QuorateSystem(QUORATE_PORT_BASE, 'raft', undefined, grpc)
        : name === 'baseline'
          ? new QuorateSystem(BASELINE_PORT_BASE, 'raft', s.baselineBin, grpc)
          : new QuorateSystem(MULTIPAXOS_PORT_BASE, 'multipaxos', undefined, grpc),
  );
  const stopAll = () => Promise.allSettled(systems.map((x) => x.stop()));
  const onSignal = () => void stopAll().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let results: AllResults;
  try {
    results = await benchBoth(systems, s);
  } finally {
    await stopAll();
    console.log('clusters stopped');
  }
  const report: Report = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', node: process.version },
    settings: s,
    points: s.points.map(pointName),
    results: results.http,
    ...(s.apis.includes('grpc')
      ? { grpcPoints: s.grpcPoints.map(grpcPointName), grpc: results.grpc }
      : {}),
  };
  if (s.apis.includes('http')) console.log(`\nHTTP APIs:\n${renderTable(report)}`);
  if (s.apis.includes('grpc')) console.log(`\n${renderGrpcTable(results.grpc, s.grpcPoints)}`);
  const out = join(root, 'bench-results', 'kv.json');
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
