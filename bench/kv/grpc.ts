/**
 * `npm run bench:kv-grpc`: the gRPC column of the key-value benchmark. One load generator
 * speaking etcd's v3 gRPC API (grpc-loadgen.ts) drives a 3-node etcd cluster through its
 * native gRPC API and 3-node quorate clusters (Raft, and Multi-Paxos for context) through
 * theirs (src/server/etcd), all on loopback, fsync on, 100-byte values over 10,000 keys:
 * Put and linearizable Range at 1, 16 and 64 clients. Each point runs `--repeat` times,
 * systems alternating; the table shows medians and quorate/etcd. The clusters and their
 * start-up are bench:kv's (bench/kv/systems.ts, bench/peers/etcd).
 *
 *   npm run bench:kv-grpc -- [--seconds 8] [--warmup 2] [--repeat 3] [--only etcd,quorate,multipaxos]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type LocalCluster, startLocalCluster } from '../../src/cli/commands/up.ts';
import { EtcdGrpcClient } from '../../src/server/etcd/grpc-client.ts';
import type { StatusResponse } from '../../src/server/etcd/types.ts';
import type { GrpcLoadResult, GrpcLoadSpec } from './grpc-loadgen.ts';
import { median } from './stats.ts';
import { EtcdSystem } from './systems.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
// Below Linux's ephemeral range, apart from bench:kv's 21379.. and etcd's 12379.. ports.
const PORT_BASES = { quorate: 24379, multipaxos: 24479 } as const;
const sleep = (ms: number) => new Promise<void>((wake) => setTimeout(wake, ms));

type Name = 'etcd' | 'quorate' | 'multipaxos';
interface Point {
  readonly op: 'put' | 'get';
  readonly clients: number;
}
const points: readonly Point[] = [1, 16, 64].flatMap((clients) =>
  (['put', 'get'] as const).map((op) => ({ op, clients })),
);
const pointName = (p: Point) => `${p.op === 'put' ? 'put' : 'lin-range'} C=${p.clients}`;

interface System {
  readonly name: Name;
  /** host:port of each member's gRPC API. */
  endpoints(): readonly string[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

class EtcdGrpc implements System {
  readonly name = 'etcd' as const;
  private readonly etcd = new EtcdSystem();
  endpoints() {
    return this.etcd.endpoints.map((e) => new URL(e).host);
  }
  start() {
    return this.etcd.start();
  }
  stop() {
    return this.etcd.stop();
  }
}

class QuorateGrpc implements System {
  private cluster: LocalCluster | undefined;
  private dir: string | undefined;
  constructor(readonly name: 'quorate' | 'multipaxos') {}
  endpoints() {
    return (this.cluster?.nodes ?? []).map((n) => new URL(n.grpcUrl as string).host);
  }
  async start() {
    this.dir = await mkdtemp(join(tmpdir(), 'quorate-bench-grpc-'));
    const portBase = PORT_BASES[this.name];
    this.cluster = await startLocalCluster({
      nodes: 3,
      dataDir: this.dir,
      portBase,
      grpcPortBase: portBase + 6,
      nodeArgs: ['--protocol', this.name === 'quorate' ? 'raft' : 'multipaxos'],
    });
  }
  async stop() {
    await this.cluster?.stopAll();
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Index of the member all agree leads, asked through etcd's Maintenance.Status. */
async function leaderIndex(endpoints: readonly string[]): Promise<number> {
  for (let poll = 0; poll < 100; poll++) {
    const statuses = await Promise.all(
      endpoints.map(async (e) => {
        const c = new EtcdGrpcClient(e);
        try {
          return await c.unary<object, StatusResponse>('Maintenance', 'Status', {}, 500);
        } catch {
          return undefined;
        } finally {
          c.close();
        }
      }),
    );
    const leaders = new Set(statuses.map((s) => s?.leader ?? 0));
    const [leader] = leaders;
    const index = statuses.findIndex((s) => s?.header.member_id === leader);
    if (leaders.size === 1 && leader !== 0 && index >= 0) return index;
    await sleep(100);
  }
  throw new Error('no stable leader');
}

/** Client 0 starts on the member after the leader, as bench:kv's fromFollower does. */
function fromFollower(endpoints: readonly string[], leader: number): string[] {
  return endpoints.map((_, i) => endpoints[(leader + 1 + i) % endpoints.length] as string);
}

function spawnLoad(spec: GrpcLoadSpec): Promise<GrpcLoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(here, 'grpc-loadgen.ts'), JSON.stringify(spec)],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), spec.warmupMs + spec.durationMs + 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || line === '') return reject(new Error(`grpc-loadgen exited ${code}`));
      resolve(JSON.parse(line) as GrpcLoadResult);
    });
  });
}

interface Settings {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly repeat: number;
  readonly only: readonly Name[];
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '2' },
      repeat: { type: 'string', default: '3' },
      only: { type: 'string', default: 'etcd,quorate,multipaxos' },
    },
  });
  const only = (values.only ?? '').split(',') as Name[];
  for (const n of only) {
    if (n !== 'etcd' && n !== 'quorate' && n !== 'multipaxos') throw new RangeError(`--only: ${n}`);
  }
  const s = {
    seconds: Number(values.seconds),
    warmupSeconds: Number(values.warmup),
    repeat: Number(values.repeat),
    only,
  };
  if (!(s.seconds > 0 && s.seconds <= 600) || !(s.warmupSeconds >= 0 && s.warmupSeconds <= 60)) {
    throw new RangeError('--seconds in (0, 600], --warmup in [0, 60]');
  }
  if (!Number.isInteger(s.repeat) || s.repeat < 1 || s.repeat > 20)
    throw new RangeError('--repeat 1..20');
  return s;
}

const base = { keys: 10_000, valueBytes: 100, timeoutMs: 5000, backoffMs: 10 } as const;

async function main(): Promise<void> {
  const s = settings();
  const systems: System[] = s.only.map((n) => (n === 'etcd' ? new EtcdGrpc() : new QuorateGrpc(n)));
  const runs = new Map<string, GrpcLoadResult[]>();
  try {
    for (const system of systems) {
      console.log(`${system.name}: starting`);
      await system.start();
      await leaderIndex(system.endpoints());
      const endpoints = system.endpoints();
      const fill = await spawnLoad({
        ...base,
        endpoints,
        op: 'fill',
        clients: 64,
        warmupMs: 0,
        durationMs: 600_000,
      });
      console.log(`  ${system.name} filled ${fill.ok} keys in ${fill.seconds} s`);
      for (const op of ['put', 'get'] as const) {
        await spawnLoad({ ...base, endpoints, op, clients: 16, warmupMs: 0, durationMs: 5000 });
      }
    }
    for (let round = 0; round < s.repeat; round++) {
      const order = round % 2 === 0 ? systems : [...systems].reverse();
      for (const p of points) {
        for (const system of order) {
          const endpoints = fromFollower(system.endpoints(), await leaderIndex(system.endpoints()));
          const r = await spawnLoad({
            ...base,
            endpoints,
            op: p.op,
            clients: p.clients,
            warmupMs: s.warmupSeconds * 1000,
            durationMs: s.seconds * 1000,
          });
          const key = `${system.name} ${pointName(p)}`;
          runs.set(key, [...(runs.get(key) ?? []), r]);
          const errs = Object.values(r.errors).reduce((a, b) => a + b, 0);
          console.log(
            `  ${key.padEnd(28)} ${String(r.opsPerSec).padStart(9)} ops/s  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms${errs > 0 ? `  errors ${JSON.stringify(r.errors)}` : ''}`,
          );
        }
      }
    }
  } finally {
    for (const system of systems) await system.stop();
  }
  report(s, runs);
  await mkdir(join(root, 'bench-results'), { recursive: true });
  await writeFile(
    join(root, 'bench-results', 'kv-grpc.json'),
    `${JSON.stringify({ settings: s, runs: Object.fromEntries(runs) }, null, 2)}\n`,
  );
}

function report(s: Settings, runs: Map<string, GrpcLoadResult[]>): void {
  const cell = (name: Name, p: Point, f: (r: GrpcLoadResult) => number) => {
    const rs = runs.get(`${name} ${pointName(p)}`);
    return rs === undefined ? undefined : median(rs.map(f));
  };
  const rows: string[] = [
    '| metric | quorate | multipaxos | etcd | quorate/etcd |',
    '|:--|--:|--:|--:|--:|',
  ];
  for (const p of points) {
    for (const [label, f] of [
      ['ops/s', (r: GrpcLoadResult) => r.opsPerSec],
      ['p50 ms', (r: GrpcLoadResult) => r.p50Ms],
      ['p99 ms', (r: GrpcLoadResult) => r.p99Ms],
    ] as const) {
      const q = cell('quorate', p, f);
      const m = cell('multipaxos', p, f);
      const e = cell('etcd', p, f);
      const ratio = q !== undefined && e !== undefined && e > 0 ? (q / e).toFixed(2) : '';
      rows.push(`| ${pointName(p)} ${label} | ${q ?? ''} | ${m ?? ''} | ${e ?? ''} | ${ratio} |`);
    }
  }
  console.log(`\ngRPC column, medians of ${s.repeat} runs of ${s.seconds} s:\n${rows.join('\n')}`);
}

await main();
