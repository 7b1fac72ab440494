/**
 * The two clusters under test behind one interface: start, find the leader, kill -9 it,
 * restart it, stop. Each only ever signals processes it started itself.
 *
 *   etcd:    the scripts in bench/peers/etcd (start-cluster.sh / stop-cluster.sh),
 *            with their state dir pointed at our own temp dir; pids from their pid files,
 *            checked against /proc/<pid>/cmdline before any signal.
 *   quorate: startLocalCluster (child processes of `quorate node`) on a fresh temp data dir.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type LocalCluster, startLocalCluster } from '../../src/cli/commands/up.ts';
import type { SystemName } from './adapters.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((wake) => setTimeout(wake, ms));
const STATUS_TIMEOUT_MS = 500;
const LEADER_POLLS_MAX = 100;
const LEADER_POLL_MS = 100;

export interface BenchSystem {
  readonly name: SystemName;
  readonly endpoints: readonly string[];
  /** host:port of each member's etcd v3 gRPC API, in the order of `endpoints`. */
  readonly grpcEndpoints: readonly string[];
  start(): Promise<void>;
  /** Index (into endpoints) of the member every live member agrees leads, if any. */
  leader(): Promise<number | undefined>;
  kill(index: number): Promise<void>;
  restart(index: number): Promise<void>;
  /** Pids of the running members, for CPU accounting. */
  pids(): readonly number[];
  stop(): Promise<void>;
}

/** Waits until every live member agrees on one leader; throws after ~10 s. */
export async function stableLeader(system: BenchSystem): Promise<number> {
  for (let poll = 0; poll < LEADER_POLLS_MAX; poll++) {
    const index = await system.leader();
    if (index !== undefined) return index;
    await sleep(LEADER_POLL_MS);
  }
  throw new Error(`${system.name}: no stable leader after ${LEADER_POLLS_MAX} polls`);
}

async function fetchJson(url: string, init: RequestInit = {}): Promise<unknown> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the process `pid` is alive and its command line contains `marker`. */
async function commandLineHas(pid: number, marker: string): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').includes(marker);
  } catch {
    return false;
  }
}

async function waitGone(pid: number, marker: string): Promise<void> {
  for (let i = 0; i < 200 && (await commandLineHas(pid, marker)); i++) await sleep(10);
}

const etcdScripts = resolve(fileURLToPath(new URL('.', import.meta.url)), '../peers/etcd');

export class EtcdSystem implements BenchSystem {
  readonly name = 'etcd' as const;
  readonly endpoints = [
    'http://127.0.0.1:12379',
    'http://127.0.0.1:22379',
    'http://127.0.0.1:32379',
  ];
  // etcd serves gRPC and its JSON gateway on the same client port.
  readonly grpcEndpoints = this.endpoints.map((e) => new URL(e).host);
  private stateDir: string | undefined;
  private base: string | undefined;
  private readonly livePids: (number | undefined)[] = [undefined, undefined, undefined];

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, ETCD_STATE_DIR: this.stateDir };
  }

  async start(): Promise<void> {
    this.stateDir = await mkdtemp(join(tmpdir(), 'quorate-bench-etcd-state-'));
    await run('bash', [join(etcdScripts, 'start-cluster.sh')], { env: this.env() });
    this.base = (await readFile(join(this.stateDir, 'base'), 'utf8')).trim();
    for (let i = 0; i < 3; i++) await this.readPid(i);
  }

  private async readPid(index: number): Promise<void> {
    const text = await readFile(join(this.base as string, `m${index + 1}.pid`), 'utf8');
    this.livePids[index] = Number(text.trim());
  }

  private memberDir(index: number): string {
    return join(this.base as string, `m${index + 1}.etcd`);
  }

  async leader(): Promise<number | undefined> {
    const statuses = await Promise.all(
      this.endpoints.map((e, i) =>
        this.livePids[i] === undefined
          ? undefined
          : fetchJson(`${e}/v3/maintenance/status`, { method: 'POST', body: '{}' }),
      ),
    );
    const seen = statuses
      .map((s, i) => ({ s: s as EtcdStatus | undefined, i }))
      .filter((x) => this.livePids[x.i] !== undefined);
    if (seen.some((x) => x.s === undefined)) return undefined;
    // The gateway omits zero-valued fields: no `leader` means no leader.
    const leaders = new Set(seen.map((x) => x.s?.leader ?? '0'));
    const [leader] = leaders;
    if (leaders.size !== 1 || leader === '0') return undefined;
    return seen.find((x) => x.s?.header.member_id === leader)?.i;
  }

  async kill(index: number): Promise<void> {
    const pid = this.livePids[index];
    if (pid === undefined) throw new Error(`etcd m${index + 1} is not running`);
    const marker = this.memberDir(index);
    if (!(await commandLineHas(pid, marker))) throw new Error(`pid ${pid} is not our etcd`);
    process.kill(pid, 'SIGKILL');
    this.livePids[index] = undefined;
    await waitGone(pid, marker);
  }

  async restart(index: number): Promise<void> {
    await run('bash', [join(etcdScripts, 'start-cluster.sh'), '--member', String(index + 1)], {
      env: this.env(),
    });
    await this.readPid(index);
  }

  pids(): readonly number[] {
    return this.livePids.filter((p): p is number => p !== undefined);
  }

  async stop(): Promise<void> {
    if (this.stateDir === undefined) return;
    await run('bash', [join(etcdScripts, 'stop-cluster.sh')], { env: this.env() }).catch(
      (err: unknown) => console.error(`etcd stop-cluster.sh failed: ${String(err)}`),
    );
    this.livePids.fill(undefined);
    await rm(this.stateDir, { recursive: true, force: true });
    this.stateDir = undefined;
  }
}

interface EtcdStatus {
  readonly header: { readonly member_id: string };
  readonly leader?: string;
}

export class QuorateSystem implements BenchSystem {
  readonly name: 'quorate' | 'multipaxos' | 'baseline';
  readonly endpoints: readonly string[];
  readonly grpcEndpoints: readonly string[];
  private cluster: LocalCluster | undefined;
  private dataDir: string | undefined;

  /**
   * `baselineBin`: run the nodes with another checkout's bin/quorate.mjs, named `baseline`.
   * `grpc`: serve etcd's gRPC API too; off for `--apis http`, so that a baseline checkout
   * from before the gRPC API (which refuses its flag) can still be compared over HTTP.
   */
  constructor(
    private readonly portBase: number,
    private readonly protocol: 'raft' | 'multipaxos' = 'raft',
    private readonly baselineBin?: string,
    private readonly grpc = true,
  ) {
    this.name =
      baselineBin !== undefined ? 'baseline' : protocol === 'raft' ? 'quorate' : 'multipaxos';
    this.endpoints = [0, 1, 2].map((i) => `http://127.0.0.1:${portBase + 2 * i}`);
    this.grpcEndpoints = [0, 1, 2].map((i) => `127.0.0.1:${this.grpcPortBase() + i}`);
  }

  /** After the three client and three peer ports. */
  private grpcPortBase(): number {
    return this.portBase + 6;
  }

  async start(): Promise<void> {
    this.dataDir = await mkdtemp(join(tmpdir(), 'quorate-bench-kv-'));
    this.cluster = await startLocalCluster({
      nodes: 3,
      dataDir: this.dataDir,
      portBase: this.portBase,
      ...(this.grpc ? { grpcPortBase: this.grpcPortBase() } : {}),
      nodeArgs: ['--protocol', this.protocol],
      ...(this.baselineBin === undefined ? {} : { binPath: this.baselineBin }),
    });
  }

  private live(): LocalCluster {
    if (this.cluster === undefined) throw new Error('quorate cluster is not started');
    return this.cluster;
  }

  async leader(): Promise<number | undefined> {
    const cluster = this.live();
    const running = cluster.nodes.filter((n) => cluster.isRunning(n.id));
    const statuses = (await Promise.all(
      running.map((n) => fetchJson(`${n.clientUrl}/v1/status`)),
    )) as (QuorateStatus | undefined)[];
    if (statuses.some((s) => s === undefined)) return undefined;
    const leaders = new Set(statuses.map((s) => s?.leader ?? 0));
    const [leader] = leaders;
    if (leaders.size !== 1 || leader === 0 || leader === undefined) return undefined;
    const index = cluster.nodes.findIndex((n) => n.id === leader);
    return index >= 0 && cluster.isRunning(leader) ? index : undefined;
  }

  async kill(index: number): Promise<void> {
    const node = this.live().nodes[index];
    if (node === undefined) throw new Error(`no quorate node at ${index}`);
    await this.live().kill(node.id, 'SIGKILL');
  }

  async restart(index: number): Promise<void> {
    const node = this.live().nodes[index];
    if (node === undefined) throw new Error(`no quorate node at ${index}`);
    await this.live().start(node.id);
  }

  pids(): readonly number[] {
    const cluster = this.cluster;
    if (cluster === undefined) return [];
    return cluster.nodes.map((n) => cluster.pid(n.id)).filter((p): p is number => p !== undefined);
  }

  async stop(): Promise<void> {
    await this.cluster?.stopAll();
    this.cluster = undefined;
    if (this.dataDir !== undefined) await rm(this.dataDir, { recursive: true, force: true });
    this.dataDir = undefined;
  }
}

interface QuorateStatus {
  readonly leader: number;
}
