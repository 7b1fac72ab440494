import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { NodeId } from '../../kernel/ids.ts';
import type { ClusterCertificateFiles } from '../../runtime/certificates.ts';
import { packageRoot } from '../package-root.ts';
import { type CommandModule, EXIT, intOption, UsageError } from '../program.ts';
import { commandSummaries } from '../summaries.ts';
import { logFormatOf, logLevels } from './node.ts';

/**
 * A local cluster of `quorate node` child processes on 127.0.0.1: `quorate up` for people,
 * `startLocalCluster` for the end-to-end tests, the dashboard and benchmarks. Node i (from 1)
 * serves clients on portBase + 2(i-1) and peers on portBase + 2(i-1) + 1, keeps its data in
 * <dataDir>/node-<i> and its log (JSON lines) in <dataDir>/node-<i>.log. The secret is
 * generated once and kept in <dataDir>/secret (mode 0600). Nothing is restarted by itself.
 */
export interface LocalClusterOptions {
  readonly nodes: number;
  readonly dataDir: string;
  readonly portBase: number;
  readonly host?: string;
  /** Extra `quorate node` flags for every node (timeouts, snapshot interval...). */
  readonly nodeArgs?: readonly string[];
  /** How long a node may take to print its ready line. */
  readonly readyTimeoutMs?: number;
  /**
   * A node's process ended without this cluster stopping it: it crashed, failed its storage,
   * or was removed from the cluster and shut itself down (exit code 0).
   */
  readonly onExit?: (node: LocalNode, code: number | null, signal: NodeJS.Signals | null) => void;
  /**
   * TLS for every node's peer links and client API, with a private CA made for the cluster
   * and kept in <dataDir>/tls (see certificates.ts); client URLs are then https.
   */
  readonly tls?: boolean;
  /** Node i serves etcd's gRPC API on grpcPortBase + i - 1; none: no gRPC API. */
  readonly grpcPortBase?: number;
  /** Members the cluster removed (their ids are retired): laid out, never started. */
  readonly retired?: readonly NodeId[];
  /**
   * The `quorate` command each node runs (default: this package's bin/quorate.mjs). A
   * benchmark points it at another checkout to compare two versions in one run.
   */
  readonly binPath?: string;
}

export interface LocalNode {
  readonly id: NodeId;
  readonly clientUrl: string;
  readonly peerAddress: string;
  /** etcd v3 gRPC endpoint (http(s)://host:port), when the cluster serves it. */
  readonly grpcUrl?: string;
  readonly dataDir: string;
  readonly logFile: string;
}

export interface LocalCluster {
  readonly nodes: readonly LocalNode[];
  readonly secretFile: string;
  /** With TLS: the certificate files, `ca` being what a client must trust. */
  readonly tls: ClusterCertificateFiles | undefined;
  /** The --peers value naming every node. */
  readonly peers: string;
  endpoints(): readonly { readonly id: NodeId; readonly clientUrl: string }[];
  /**
   * Lays out one more node (its ports follow the others') without starting it; start it
   * with `start(id, ['--join'])` and add it through the membership API.
   */
  addNode(id: NodeId): LocalNode;
  /** Starts (or restarts) node `id` and resolves once it is serving. */
  start(id: NodeId, extraArgs?: readonly string[]): Promise<void>;
  /** Sends `signal` (SIGKILL by default) and resolves once the process is gone. */
  kill(id: NodeId, signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGTERM, a clean shutdown; resolves with the exit code. */
  stop(id: NodeId): Promise<number | null>;
  isRunning(id: NodeId): boolean;
  pid(id: NodeId): number | undefined;
  /** Stops every running node (SIGTERM, then SIGKILL after a grace period). */
  stopAll(graceMs?: number): Promise<void>;
}

const binPath = join(packageRoot(), 'bin', 'quorate.mjs');
/**
 * V8 settings for a node process. A node's live heap is small (tens of MB) but it promotes
 * steadily (log entries, key versions and watch history live for seconds), so by default V8
 * runs a full mark-compact every few seconds under load, each a 10-15 ms pause on a 2-core
 * machine: the slowest writes. Letting the old generation reach 128 MB before the first one
 * makes them rare (measured: none in a 20 s write load, against 2-5 per node before).
 * Operators starting `quorate node` themselves can pass the same flag to node.
 */
export const NODE_RUNTIME_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/** Node `id`'s addresses in a cluster laid out from `portBase`. */
export function localNode(
  dataDir: string,
  host: string,
  portBase: number,
  id: NodeId,
  scheme: 'http' | 'https' = 'http',
  grpcPortBase?: number,
): LocalNode {
  const clientPort = portBase + 2 * (id - 1);
  return {
    id,
    clientUrl: `${scheme}://${host}:${clientPort}`,
    peerAddress: `${host}:${clientPort + 1}`,
    ...(grpcPortBase === undefined
      ? {}
      : { grpcUrl: `${scheme}://${host}:${grpcPortBase + id - 1}` }),
    dataDir: join(dataDir, `node-${id}`),
    logFile: join(dataDir, `node-${id}.log`),
  };
}

async function ensureSecret(dataDir: string): Promise<string> {
  const path = join(dataDir, 'secret');
  if (!existsSync(path)) {
    await writeFile(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  }
  const secret = (await readFile(path, 'utf8')).trim();
  if (secret.length < 16) throw new Error(`${path} holds a secret shorter than 16 bytes`);
  return path;
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 99) {
    throw new RangeError(`nodes must be in 1..99, got ${options.nodes}`);
  }
  const host = options.host ?? '127.0.0.1';
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const secretFile = await ensureSecret(dataDir);
  // The X.509 code (and its packages) loads only for a cluster that uses TLS.
  const tls =
    options.tls === true
      ? await (await import('../../runtime/certificates.ts')).ensureClusterCertificates(
          join(dataDir, 'tls'),
          host,
        )
      : undefined;
  const scheme = tls === undefined ? 'http' : 'https';
  const nodes = Array.from({ length: options.nodes }, (_, i) =>
    localNode(dataDir, host, options.portBase, i + 1, scheme, options.grpcPortBase),
  );
  const peers = nodes.map((n) => `${n.id}=${n.peerAddress}@${n.clientUrl}`).join(',');
  const cluster = new ProcessCluster(nodes, peers, secretFile, tls, options);
  const retired = new Set(options.retired ?? []);
  try {
    await Promise.all(nodes.filter((n) => !retired.has(n.id)).map((n) => cluster.start(n.id)));
  } catch (err) {
    await cluster.stopAll();
    throw err;
  }
  return cluster;
}

class ProcessCluster implements LocalCluster {
  private readonly children = new Map<NodeId, ChildProcess>();
  /** Children this cluster sent a signal to: their exits are not news. */
  private readonly signalled = new WeakSet<ChildProcess>();

  constructor(
    readonly nodes: LocalNode[],
    readonly peers: string,
    readonly secretFile: string,
    readonly tls: ClusterCertificateFiles | undefined,
    private readonly options: LocalClusterOptions,
  ) {}

  endpoints(): { id: NodeId; clientUrl: string }[] {
    return this.nodes.map((n) => ({ id: n.id, clientUrl: n.clientUrl }));
  }

  addNode(id: NodeId): LocalNode {
    if (this.nodes.some((n) => n.id === id)) throw new Error(`node ${id} is already laid out`);
    const first = this.nodes[0] as LocalNode;
    const portBase = Number(new URL(first.clientUrl).port);
    const host = new URL(first.clientUrl).hostname;
    const scheme = this.tls === undefined ? 'http' : 'https';
    const node = localNode(
      resolve(first.dataDir, '..'),
      host,
      portBase,
      id,
      scheme,
      this.options.grpcPortBase,
    );
    this.nodes.push(node);
    return node;
  }

  isRunning(id: NodeId): boolean {
    const child = this.children.get(id);
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  pid(id: NodeId): number | undefined {
    return this.isRunning(id) ? this.children.get(id)?.pid : undefined;
  }

  async start(id: NodeId, extraArgs: readonly string[] = []): Promise<void> {
    const node = this.node(id);
    if (this.isRunning(id)) throw new Error(`node ${id} is already running`);
    await mkdir(node.dataDir, { recursive: true });
    const clientAddress = new URL(node.clientUrl).host;
    const args = [
      ...NODE_RUNTIME_FLAGS,
      this.options.binPath ?? binPath,
      'node',
      ...['--id', String(id), '--data', node.dataDir, '--client-listen', clientAddress],
      ...['--peer-listen', node.peerAddress, '--peers', this.peers],
      ...['--secret-file', this.secretFile],
      ...(this.tls === undefined
        ? []
        : ['--tls-cert', this.tls.cert, '--tls-key', this.tls.key, '--tls-ca', this.tls.ca]),
      ...grpcArgs(node, this.nodes),
      ...(this.options.nodeArgs ?? []),
      ...extraArgs,
    ];
    const log = createWriteStream(node.logFile, { flags: 'a' });
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr?.pipe(log);
    this.children.set(id, child);
    child.once('exit', (code, signal) => {
      if (!this.signalled.has(child)) this.options.onExit?.(node, code, signal);
    });
    await waitReady(child, id, node.logFile, this.options.readyTimeoutMs ?? 30_000);
  }

  async kill(id: NodeId, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const child = this.children.get(id);
    if (child === undefined || !this.isRunning(id)) return child?.exitCode ?? null;
    const exited = exitOf(child);
    this.signalled.add(child);
    child.kill(signal);
    return exited;
  }

  stop(id: NodeId): Promise<number | null> {
    return this.kill(id, 'SIGTERM');
  }

  async stopAll(graceMs = 5000): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        const child = this.children.get(n.id);
        if (child === undefined || !this.isRunning(n.id)) return;
        const exited = exitOf(child);
        this.signalled.add(child);
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private node(id: NodeId): LocalNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id} in this cluster`);
    return node;
  }
}

/** A node's gRPC listener and every member's gRPC URL (for etcdctl member list). */
function grpcArgs(node: LocalNode, nodes: readonly LocalNode[]): string[] {
  if (node.grpcUrl === undefined) return [];
  const peers = nodes.flatMap((n) => (n.grpcUrl === undefined ? [] : [`${n.id}=${n.grpcUrl}`]));
  return ['--grpc-listen', new URL(node.grpcUrl).host, '--grpc-peers', peers.join(',')];
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Resolves when the child prints its ready line; rejects if it exits or takes too long. */
/** How much of a node's last stderr output a start-up failure quotes. */
const STDERR_TAIL_BYTES = 1500;

function waitReady(child: ChildProcess, id: NodeId, logFile: string, timeoutMs: number) {
  return new Promise<void>((resolve, reject) => {
    let seen = '';
    // The log file is written through a pipe that may not be flushed when the node exits:
    // keep the end of stderr here too, so the error says why without opening the file.
    let stderrTail = '';
    const onStderr = (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString()).slice(-STDERR_TAIL_BYTES);
    };
    child.stderr?.on('data', onStderr);
    const why = () => (stderrTail.trim() === '' ? '' : `; its last output:\n${stderrTail.trim()}`);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${id} not ready after ${timeoutMs} ms (see ${logFile})${why()}`));
    }, timeoutMs);
    // 'close', not 'exit': it comes once stderr is drained, last words included.
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(
        new Error(`node ${id} exited with ${code} before it was ready (see ${logFile})${why()}`),
      );
    };
    child.once('close', onExit);
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (!seen.includes(' ready: ')) return;
      clearTimeout(timer);
      child.off('close', onExit);
      child.stderr?.off('data', onStderr);
      child.stdout?.removeAllListeners('data');
      child.stdout?.resume();
      resolve();
    });
  });
}

interface UpFlags {
  protocol: string;
  nodes: number;
  data: string;
  portBase: number;
  dashboard: boolean;
  dashboardPort?: number;
  tls: boolean;
  grpcPortBase?: number;
  auth?: true;
  json?: true;
  logLevel?: string;
  logFormat?: string;
}

const host = '127.0.0.1';

export const upCommand: CommandModule = (program, setExitCode) => {
  program
    .command('up')
    .description(commandSummaries.up.description)
    .option(
      '--protocol <name>',
      'raft or multipaxos (KV), totem (ordered broadcast) or gossip (membership agents)',
      'raft',
    )
    .option('--nodes <n>', 'number of nodes', intOption('--nodes', 1, 99), 3)
    .option(
      '--data <dir>',
      'data directory (also holds cluster.json, read by the other commands)',
      './data',
    )
    .option(
      '--port-base <p>',
      'first client port (peers use the next)',
      intOption('--port-base', 1, 65_000),
      2379,
    )
    .option(
      '--tls',
      'TLS for peer links and client APIs, with a private CA made for the cluster in <data>/tls',
      false,
    )
    .option('--no-dashboard', 'do not serve the web dashboard')
    .option(
      '--dashboard-port <p>',
      'dashboard port (default: after the nodes)',
      intOption('--dashboard-port', 0, 65_535),
    )
    .option(
      '--grpc-port-base <p>',
      "first etcd v3 gRPC port, one per node (default: --port-base + 200; etcdctl's endpoints)",
      intOption('--grpc-port-base', 1, 65_000),
    )
    .option('--json', 'print the endpoints as one JSON line once the cluster is up')
    .option(
      '--auth',
      "turn etcd's auth on: a root user whose random password is printed once (etcd's is off by default)",
    )
    .option('--log-level <level>', "the nodes' log level: debug, info (default), warn, error")
    .option('--log-format <format>', "the nodes' log files: json (default) or text, for people")
    .action(async (flags: UpFlags) => {
      setExitCode(await runUp(flags));
    });
};

/** `quorate up`: start, report, serve the dashboard, and stop everything on Ctrl-C. */
async function runUp(flags: UpFlags): Promise<number> {
  if (flags.protocol === 'gossip') {
    const { runGossipUp } = await import('./gossip-up.ts');
    return runGossipUp(flags);
  }
  if (flags.portBase + 2 * flags.nodes > 65_535) throw new UsageError('ports run past 65535');
  if (flags.protocol === 'totem') {
    const { runRingUp } = await import('./ring-up.ts');
    return runRingUp(flags);
  }
  if (flags.protocol !== 'raft' && flags.protocol !== 'multipaxos') {
    throw new UsageError(`--protocol must be raft or multipaxos, got '${flags.protocol}'`);
  }
  if (flags.logFormat !== undefined) logFormatOf(flags.logFormat);
  if (flags.logLevel !== undefined && !logLevels.includes(flags.logLevel)) {
    throw new UsageError(
      `--log-level must be one of ${logLevels.join(', ')}, got '${flags.logLevel}'`,
    );
  }
  const state = await import('./up-state.ts');
  const dataDir = resolve(flags.data);
  const retired = new Set(await state.recordedRetired(dataDir));
  const dashboardPort = flags.dashboardPort ?? flags.portBase + 2 * flags.nodes;
  const grpcPortBase = flags.grpcPortBase ?? flags.portBase + 200;
  if (grpcPortBase + flags.nodes > 65_535) throw new UsageError('gRPC ports run past 65535');
  await state.assertPortsFree(host, [
    ...Array.from({ length: flags.nodes }, (_, i) => i + 1)
      .filter((id) => !retired.has(id))
      .flatMap((id) => {
        const port = flags.portBase + 2 * (id - 1);
        return [
          { port, what: `node ${id}'s client port` },
          { port: port + 1, what: `node ${id}'s peer port` },
          { port: grpcPortBase + id - 1, what: `node ${id}'s gRPC port` },
        ];
      }),
    ...(flags.dashboard && dashboardPort !== 0
      ? [{ port: dashboardPort, what: 'the dashboard' }]
      : []),
  ]);
  let onNodeExit: (node: LocalNode, code: number | null) => void = () => {};
  const cluster = await startLocalCluster({
    nodes: flags.nodes,
    dataDir,
    portBase: flags.portBase,
    nodeArgs: [
      ...['--protocol', flags.protocol],
      ...(flags.logLevel === undefined ? [] : ['--log-level', flags.logLevel]),
      ...(flags.logFormat === undefined ? [] : ['--log-format', flags.logFormat]),
    ],
    tls: flags.tls,
    grpcPortBase,
    retired: [...retired],
    onExit: (node, code, signal) => {
      const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
      const why =
        code === 0 ? ' (a clean stop: removed from the cluster, or a signal from elsewhere)' : '';
      process.stderr.write(`node ${node.id} stopped: ${how}${why}; log ${node.logFile}\n`);
      onNodeExit(node, code);
    },
  });
  // Before up's own client: with auth on, it calls as root (the password only in memory).
  const rootPassword =
    flags.auth === true
      ? await (await import('./up-auth.ts')).enableAuth(cluster, (line) =>
          process.stdout.write(line),
        )
      : undefined;
  const { clientOf } = await import('./client-options.ts');
  const client = clientOf({
    ...(rootPassword === undefined ? {} : { user: `root:${rootPassword}` }),
    endpoints: cluster.nodes
      .filter((n) => !retired.has(n.id))
      .map((n) => n.clientUrl)
      .join(','),
    ...(cluster.tls === undefined ? {} : { ca: cluster.tls.ca }),
  });
  let dashboardUrl: string | undefined;
  const save = () => state.writeUpState(dataDir, state.upStateOf(cluster, retired, dashboardUrl));
  const explainRetired = (id: NodeId) => {
    const nextId = Math.max(flags.nodes, ...cluster.nodes.map((n) => n.id)) + 1;
    const scheme = cluster.tls === undefined ? 'http' : 'https';
    // One node further along than its id says: the dashboard has the port after the nodes.
    const next = localNode(dataDir, host, flags.portBase + 2, nextId, scheme);
    const peers = [...cluster.nodes.filter((n) => !retired.has(n.id)), next]
      .map((n) => `${n.id}=${n.peerAddress}@${n.clientUrl}`)
      .join(',');
    process.stdout.write(`${state.replacementHint(id, next, cluster.secretFile, peers)}\n`);
  };
  // A member that stops by itself may have been removed: the cluster's tombstone says.
  onNodeExit = (node, code) => {
    if (code !== 0 || retired.has(node.id)) return;
    void state.isRetired(client, node.id).then(async (gone) => {
      if (!gone) return;
      retired.add(node.id);
      explainRetired(node.id);
      await save();
    });
  };
  for (const id of retired) explainRetired(id);
  printCluster(cluster, retired);
  const { startDashboard } = await import('../dashboard.ts');
  const dashboard = flags.dashboard
    ? await startDashboard({
        host,
        port: dashboardPort,
        ...(cluster.tls === undefined ? {} : { ca: await readFile(cluster.tls.ca, 'utf8') }),
        log: (line) => process.stdout.write(`${line}\n`),
        cluster: {
          endpoints: () => cluster.endpoints().filter((e) => !retired.has(e.id)),
          stop: async (id) => void (await cluster.stop(id)),
          start: (id) => cluster.start(id),
        },
      })
    : undefined;
  dashboardUrl = dashboard?.url;
  await save();
  process.stdout.write(
    `cluster file: ${join(dataDir, 'cluster.json')} (the other commands read it)\n`,
  );
  if (dashboard !== undefined) process.stdout.write(`dashboard: ${dashboard.url}\n`);
  if (flags.json)
    process.stdout.write(`${JSON.stringify(state.upStateOf(cluster, retired, dashboardUrl))}\n`);
  process.stdout.write('Ctrl-C stops the cluster\n');
  await new Promise<void>((done) => {
    process.once('SIGINT', () => done());
    process.once('SIGTERM', () => done());
  });
  await dashboard?.close();
  await cluster.stopAll();
  return EXIT.ok;
}

function printCluster(cluster: LocalCluster, retired: ReadonlySet<NodeId>): void {
  for (const n of cluster.nodes) {
    if (retired.has(n.id)) continue;
    process.stdout.write(
      `node ${n.id}: client ${n.clientUrl}  peer ${n.peerAddress}${n.grpcUrl === undefined ? '' : `  grpc ${n.grpcUrl}`}  log ${n.logFile}\n`,
    );
  }
  if (cluster.tls !== undefined) {
    process.stdout.write(
      `TLS: CA ${cluster.tls.ca} (clients: --ca ${cluster.tls.ca}; curl: --cacert)\n`,
    );
  }
  const live = cluster.endpoints().filter((e) => !retired.has(e.id));
  process.stdout.write(`endpoints: ${live.map((e) => e.clientUrl).join(',')}\n`);
  const grpc = cluster.nodes.filter((n) => !retired.has(n.id) && n.grpcUrl !== undefined);
  if (grpc.length > 0) {
    const hosts = grpc.map((n) => new URL(n.grpcUrl as string).host).join(',');
    process.stdout.write(`etcd gRPC endpoints: ${hosts} (etcdctl --endpoints=${hosts})\n`);
  }
}
