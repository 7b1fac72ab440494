import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type LocalCluster, startLocalCluster } from '../../src/cli/commands/up.ts';
import { testNodeArgs } from './harness.ts';
import { freePortRange } from './ports.ts';

/**
 * Pieces of the etcd-compatibility tests: a real cluster of `quorate node` processes that
 * serve etcd's gRPC API (quorate up's layout, gRPC ports after the client and peer ones), and
 * etcdctl (Debian's etcd-client; .ci/run installs it) run against it.
 */
export function findEtcdctl(): string | undefined {
  const dirs = ['/usr/bin', ...(process.env.PATH ?? '').split(delimiter)];
  return dirs.map((d) => join(d, 'etcdctl')).find((p) => existsSync(p));
}

export interface EtcdTestCluster {
  readonly cluster: LocalCluster;
  /** host:port of every node's gRPC API, comma-separated, as etcdctl's --endpoints takes. */
  readonly endpoints: string;
  grpcHost(id: number): string;
  cleanup(): Promise<void>;
}

export async function startEtcdTestCluster(
  nodes: number,
  nodeArgs: readonly string[],
  nodesMax = nodes,
  options: { readonly tls?: boolean } = {},
): Promise<EtcdTestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'quorate-etcd-'));
  const portBase = await freePortRange(3 * nodesMax);
  const cluster = await startLocalCluster({
    nodes,
    dataDir: dir,
    portBase,
    grpcPortBase: portBase + 2 * nodesMax,
    nodeArgs: [...testNodeArgs, '--log-level', 'info', ...nodeArgs],
    readyTimeoutMs: 60_000,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  const grpcHost = (id: number) => {
    const node = cluster.nodes.find((n) => n.id === id);
    if (node?.grpcUrl === undefined) throw new Error(`node ${id} serves no gRPC API`);
    return new URL(node.grpcUrl).host;
  };
  return {
    cluster,
    endpoints: cluster.nodes.map((n) => grpcHost(n.id)).join(','),
    grpcHost,
    async cleanup() {
      await cluster.stopAll(2000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs etcdctl (API v3) to completion, feeding `input` on stdin; bounded by `timeoutMs`. */
export function etcdctl(
  bin: string,
  endpoints: string,
  args: readonly string[],
  input?: string,
  timeoutMs = 20_000,
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(bin, [`--endpoints=${endpoints}`, '--dial-timeout=5s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // etcdctl may exit before reading its input (a refused command): the pipe then breaks,
    // which is not this run's result. end('') wrote an empty chunk, and that broke it too.
    child.stdin.on('error', () => {});
    if (input === undefined) child.stdin.end();
    else child.stdin.end(input);
  });
}

/** A long-running etcdctl (watch): its output so far, and a stop that ends it by pid. */
export function etcdctlBackground(
  bin: string,
  endpoints: string,
  args: readonly string[],
): { output(): string; stop(): Promise<void> } {
  const child = spawn(bin, [`--endpoints=${endpoints}`, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const safety = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return {
    output: () => out,
    async stop() {
      clearTimeout(safety);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
