/**
 * The gRPC column of the key-value benchmark. Load generators speaking etcd's v3 gRPC API
 * (grpc-loadgen.ts, `--loadgens` processes per point) drive a 3-node etcd cluster through
 * its native gRPC API and 3-node quorate clusters (Raft, and Multi-Paxos for context)
 * through theirs (src/server/etcd), all on loopback, fsync on, 100-byte values over 10,000
 * keys: Put and linearizable Range at 1, 16 and 64 clients, and watch fan-out (100
 * watchers on one prefix over 10 connections, one closed-loop writer: events delivered per
 * second to all watchers, and put-to-event latency). `npm run bench:kv` runs these points
 * in the same run as its HTTP points (run.ts); `npm run bench:kv-grpc` runs them alone:
 * each point `--repeat` times, systems alternating; the table shows medians and
 * quorate/etcd. The clusters and their start-up are bench:kv's (systems.ts, bench/peers/etcd).
 *
 *   npm run bench:kv-grpc -- [--seconds 8] [--warmup 2] [--repeat 3] [--loadgens 2]
 *                            [--only etcd,quorate,multipaxos] [--grpc-points put:16,get:1,watch]
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { SystemName } from './adapters.ts';
import type { GrpcLoadResult, GrpcLoadSpec } from './grpc-loadgen.ts';
import { median, percentile } from './stats.ts';
import { type BenchSystem, EtcdSystem, QuorateSystem, stableLeader } from './systems.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
// Below Linux's ephemeral range, apart from bench:kv's 21379.. and etcd's 12379.. ports.
const PORT_BASES = { quorate: 24379, multipaxos: 24479 } as const;
const LOAD_SLACK_MS = 60_000;
/** Load processes one point may be split over. */
export const LOADGENS_MAX = 16;

export type GrpcPoint =
  | { readonly op: 'put' | 'get'; readonly clients: number }
  | {
      readonly op: 'watch';
      readonly watchers: number;
      readonly connections: number;
      readonly clients: number;
    };

export const grpcPoints: readonly GrpcPoint[] = [
  ...[1, 16, 64].flatMap((clients) => (['put', 'get'] as const).map((op) => ({ op, clients }))),
  { op: 'watch', watchers: 100, connections: 10, clients: 1 },
];

export const grpcPointName = (p: GrpcPoint): string =>
  p.op === 'watch'
    ? `watch W=${p.watchers}`
    : `${p.op === 'put' ? 'put' : 'lin-range'} C=${p.clients}`;

/** One run of a point, all its load processes merged. */
export interface GrpcPointResult {
  /** Calls per second; for watch, events per second delivered to all watchers. */
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: Record<string, number>;
  readonly loadgens: number;
  /** CPU of all load processes, per successful call (or event). */
  readonly loadgenCpuUsPerOp: number;
  /** watch: the writers' puts per second. */
  readonly putsPerSec?: number;
}

export interface GrpcSettings {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly loadgens: number;
}

const base = { keys: 10_000, valueBytes: 100, timeoutMs: 5000, backoffMs: 10 } as const;

function spawnLoad(spec: GrpcLoadSpec): Promise<GrpcLoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(here, 'grpc-loadgen.ts'), JSON.stringify(spec)],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(
      () => child.kill('SIGKILL'),
      spec.warmupMs + spec.durationMs + LOAD_SLACK_MS,
    );
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || line === '') return reject(new Error(`grpc-loadgen exited ${code}`));
      resolve(JSON.parse(line) as GrpcLoadResult);
    });
  });
}

/** `total` split into `parts` near-equal shares, larger first. */
function shares(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

/** The specs of one point's load processes: clients (or watchers) shared out among them. */
function specsOf(endpoints: readonly string[], p: GrpcPoint, s: GrpcSettings): GrpcLoadSpec[] {
  const common = {
    ...base,
    endpoints,
    warmupMs: s.warmupSeconds * 1000,
    durationMs: s.seconds * 1000,
  };
  if (p.op !== 'watch') {
    return shares(p.clients, Math.min(p.clients, s.loadgens)).map((clients, i) => ({
      ...common,
      // Each process's client 0 on a different member, as one process's clients would be.
      endpoints: endpoints.map((_, k) => endpoints[(k + i) % endpoints.length] as string),
      op: p.op,
      clients,
    }));
  }
  const procs = Math.min(s.loadgens, p.connections);
  const connections = shares(p.connections, procs);
  const watchers = shares(p.watchers, procs);
  let first = 0;
  return connections.map((c, i) => {
    const spec: GrpcLoadSpec = {
      ...common,
      endpoints: endpoints.map((_, k) => endpoints[(k + first) % endpoints.length] as string),
      op: 'watch',
      clients: i === 0 ? p.clients : 0,
      watchers: watchers[i] as number,
      connections: c,
      writerProcess: i === 0,
    };
    first += c;
    return spec;
  });
}

/** Runs one point against `endpoints` (client 0 first), its load split over processes. */
export async function runGrpcPoint(
  endpoints: readonly string[],
  p: GrpcPoint,
  s: GrpcSettings,
): Promise<GrpcPointResult> {
  const specs = specsOf(endpoints, p, s);
  const results = await Promise.all(specs.map(spawnLoad));
  const ok = results.reduce((a, r) => a + r.ok, 0);
  const sorted = Float64Array.from(results.flatMap((r) => r.latenciesMs)).sort();
  const errors: Record<string, number> = {};
  for (const r of results) {
    for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  }
  const cpuMs = results.reduce((a, r) => a + r.cpuMs, 0);
  const round = (x: number) => Math.round(x * 100) / 100;
  const puts = results.reduce((a, r) => a + (r.puts ?? 0), 0);
  return {
    opsPerSec: round(ok / s.seconds),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    errors,
    loadgens: specs.length,
    loadgenCpuUsPerOp: ok > 0 ? Math.round((cpuMs * 1000) / ok) : 0,
    ...(p.op === 'watch' ? { putsPerSec: round(puts / s.seconds) } : {}),
  };
}

/** Writes every key once (for reads), then some untimed gRPC load (Node's JIT warms up). */
export async function prepareGrpc(
  endpoints: readonly string[],
  fill: boolean,
  warmMs: number,
): Promise<void> {
  const one = { ...base, endpoints, warmupMs: 0 };
  if (fill) await spawnLoad({ ...one, op: 'fill', clients: 64, durationMs: 600_000 });
  for (const op of ['put', 'get'] as const) {
    await spawnLoad({ ...one, op, clients: 16, durationMs: warmMs / 2 });
  }
}

/** Client 0 starts on the member after the leader, as bench:kv's fromFollower does. */
export function grpcFromFollower(endpoints: readonly string[], leader: number): string[] {
  return endpoints.map((_, i) => endpoints[(leader + 1 + i) % endpoints.length] as string);
}

export function describeRun(name: string, p: GrpcPoint, r: GrpcPointResult): string {
  const errs = Object.values(r.errors).reduce((a, b) => a + b, 0);
  const unit = p.op === 'watch' ? 'events/s' : 'ops/s';
  return (
    `  ${`${name} gRPC ${grpcPointName(p)}`.padEnd(32)} ${String(r.opsPerSec).padStart(9)} ${unit}` +
    `  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms` +
    (r.putsPerSec === undefined ? '' : `  puts/s ${r.putsPerSec}`) +
    `  loadgens ${r.loadgens} (${r.loadgenCpuUsPerOp} us cpu/op)` +
    (errs > 0 ? `  errors ${JSON.stringify(r.errors)}` : '')
  );
}

/** Medians of one point's runs. */
export interface GrpcPointSummary {
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly putsPerSec?: number;
  readonly runs: readonly GrpcPointResult[];
}

export function summarize(runs: readonly GrpcPointResult[]): GrpcPointSummary {
  const puts = runs.flatMap((r) => (r.putsPerSec === undefined ? [] : [r.putsPerSec]));
  return {
    opsPerSec: median(runs.map((r) => r.opsPerSec)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    ...(puts.length > 0 ? { putsPerSec: median(puts) } : {}),
    runs,
  };
}

export type GrpcResults = Partial<Record<SystemName, Record<string, GrpcPointSummary>>>;

/** The gRPC table: one row per point and metric, medians, quorate/etcd and the goal. */
export function renderGrpcTable(results: GrpcResults, points: readonly GrpcPoint[]): string {
  const rows: string[] = [
    '| gRPC (etcd v3 API) | quorate | multipaxos | etcd | quorate/etcd | target |',
    '|:--|--:|--:|--:|--:|:--|',
  ];
  for (const p of points) {
    const name = grpcPointName(p);
    const metrics: [string, (x: GrpcPointSummary) => number | undefined, boolean][] = [
      [p.op === 'watch' ? 'events/s' : 'ops/s', (x) => x.opsPerSec, true],
      ['p50 ms', (x) => x.p50Ms, false],
      ['p99 ms', (x) => x.p99Ms, false],
    ];
    if (p.op === 'watch') metrics.push(['writer puts/s', (x) => x.putsPerSec, false]);
    for (const [label, f, higherBetter] of metrics) {
      const cell = (n: SystemName) => {
        const x = results[n]?.[name];
        return x === undefined ? undefined : f(x);
      };
      const q = cell('quorate');
      const e = cell('etcd');
      const ratio = q !== undefined && e !== undefined && e > 0 ? q / e : undefined;
      // The goal is on throughput (>= 1.0) and p99 (<= 1.0); p50 and puts/s are context.
      const target =
        ratio === undefined || label.startsWith('p50') || label.startsWith('writer')
          ? ''
          : higherBetter
            ? `${ratio >= 1 ? 'met' : 'MISSED'} (ratio>=1)`
            : `${ratio <= 1 ? 'met' : 'MISSED'} (ratio<=1)`;
      rows.push(
        `| ${name} ${label} | ${q ?? '-'} | ${cell('multipaxos') ?? '-'} | ${e ?? '-'} | ${ratio?.toFixed(2) ?? '-'} | ${target} |`,
      );
    }
  }
  return rows.join('\n');
}

/** `--grpc-points`: `put:16`, `get:1`, `watch` (100 watchers), `watch:1000`; empty: all. */
export function parseGrpcPoints(text: string | undefined): readonly GrpcPoint[] {
  if (text === undefined || text === '') return grpcPoints;
  return text.split(',').map((item): GrpcPoint => {
    const [op, n] = item.split(':');
    const count = n === undefined && op === 'watch' ? 100 : Number(n);
    if (!Number.isInteger(count) || count < 1 || count > 1024) {
      throw new RangeError(`--grpc-points: put:C, get:C or watch[:W] (1..1024), got ${item}`);
    }
    if (op === 'put' || op === 'get') return { op, clients: count };
    if (op === 'watch') {
      return { op, watchers: count, connections: Math.max(1, Math.ceil(count / 10)), clients: 1 };
    }
    throw new RangeError(`--grpc-points: put:C, get:C or watch[:W], got ${item}`);
  });
}

export function parseLoadgens(text: string | undefined): number {
  const n = Number(text ?? '2');
  if (!Number.isInteger(n) || n < 1 || n > LOADGENS_MAX) {
    throw new RangeError(`--loadgens: 1..${LOADGENS_MAX}`);
  }
  return n;
}

interface Settings extends GrpcSettings {
  readonly repeat: number;
  readonly points: readonly GrpcPoint[];
  readonly only: readonly ('etcd' | 'quorate' | 'multipaxos')[];
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '2' },
      repeat: { type: 'string', default: '3' },
      loadgens: { type: 'string', default: '2' },
      'grpc-points': { type: 'string' },
      only: { type: 'string', default: 'etcd,quorate,multipaxos' },
    },
  });
  const only = (values.only ?? '').split(',') as Settings['only'][number][];
  for (const n of only) {
    if (n !== 'etcd' && n !== 'quorate' && n !== 'multipaxos') throw new RangeError(`--only: ${n}`);
  }
  const s = {
    seconds: Number(values.seconds),
    warmupSeconds: Number(values.warmup),
    repeat: Number(values.repeat),
    loadgens: parseLoadgens(values.loadgens),
    points: parseGrpcPoints(values['grpc-points']),
    only,
  };
  if (!(s.seconds > 0 && s.seconds <= 600) || !(s.warmupSeconds >= 0 && s.warmupSeconds <= 60)) {
    throw new RangeError('--seconds in (0, 600], --warmup in [0, 60]');
  }
  if (!Number.isInteger(s.repeat) || s.repeat < 1 || s.repeat > 20)
    throw new RangeError('--repeat 1..20');
  return s;
}

async function main(): Promise<void> {
  const s = settings();
  const systems: BenchSystem[] = s.only.map((n) =>
    n === 'etcd'
      ? new EtcdSystem()
      : new QuorateSystem(PORT_BASES[n], n === 'quorate' ? 'raft' : 'multipaxos'),
  );
  const runs = new Map<string, GrpcPointResult[]>();
  try {
    for (const system of systems) {
      console.log(`${system.name}: starting`);
      await system.start();
      await stableLeader(system);
      await prepareGrpc(system.grpcEndpoints, true, 10_000);
      console.log(`  ${system.name} filled and warmed up`);
    }
    for (let round = 0; round < s.repeat; round++) {
      const order = round % 2 === 0 ? systems : [...systems].reverse();
      for (const p of s.points) {
        for (const system of order) {
          const endpoints = grpcFromFollower(system.grpcEndpoints, await stableLeader(system));
          const r = await runGrpcPoint(endpoints, p, s);
          const key = `${system.name} ${grpcPointName(p)}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
          console.log(describeRun(system.name, p, r));
        }
      }
    }
  } finally {
    for (const system of systems) await system.stop();
  }
  const results: GrpcResults = {};
  for (const system of systems) {
    const points: Record<string, GrpcPointSummary> = {};
    for (const p of s.points) {
      const rs = runs.get(`${system.name} ${grpcPointName(p)}`);
      if (rs !== undefined) points[grpcPointName(p)] = summarize(rs);
    }
    results[system.name] = points;
  }
  console.log(
    `\nmedians of ${s.repeat} runs of ${s.seconds} s:\n${renderGrpcTable(results, s.points)}`,
  );
  await mkdir(join(root, 'bench-results'), { recursive: true });
  await writeFile(
    join(root, 'bench-results', 'kv-grpc.json'),
    `${JSON.stringify({ date: new Date().toISOString(), settings: s, results }, null, 2)}\n`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
