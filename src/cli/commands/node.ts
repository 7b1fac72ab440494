import { readFileSync } from 'node:fs';
import type { CommitHints } from '../../raft/config.ts';
import type { MemberAddress } from '../../server/engine.ts';
import type { LogFormat } from '../../server/logger.ts';
import { parsePeerAddress } from '../../server/raft-members.ts';
import { type CommandModule, intOption, UsageError } from '../program.ts';
import { commandSummaries } from '../summaries.ts';
import type { GossipNodeFlags } from './gossip-node.ts';

/**
 * `quorate node`: one key-value node, on Raft (default) or Multi-Paxos (`--protocol`). Flags or a JSON config file (flags win):
 *
 *   quorate node --id 1 --data ./data/node-1 --client-listen 127.0.0.1:2379 \
 *     --peer-listen 127.0.0.1:2380 --secret-file ./data/secret \
 *     --peers 1=127.0.0.1:2380@http://127.0.0.1:2379,2=127.0.0.1:2382@http://127.0.0.1:2381
 *
 * Prints one line `quorate node <id> ready: client <url> peer <host:port>` on stdout once it
 * serves; logs JSON to stderr. SIGTERM or SIGINT: stop accepting, finish requests in flight
 * and the batch being written, close the WAL, exit 0. A Raft node removed from the cluster
 * (`quorate member remove`) shuts down the same way once it learns of it, and exits 0.
 */
export type NodeProtocol = 'raft' | 'multipaxos';

export interface NodeConfig {
  readonly protocol: NodeProtocol;
  readonly id: number;
  readonly data: string;
  readonly clientListen: string;
  readonly peerListen?: string;
  readonly peers: readonly MemberAddress[];
  readonly secret: string;
  readonly join: boolean;
  readonly electionTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly snapshotEvery: number;
  /** Raft's RaftOptions.commitHints. */
  readonly commitHints: CommitHints;
  readonly logLevel: string;
  readonly logFormat: LogFormat;
  /** host:port of etcd's v3 gRPC API (src/server/etcd); none: not served. */
  readonly grpcListen?: string;
  /** Other members' gRPC URLs, listed by MemberList (etcdctl member list). */
  readonly grpcPeers?: ReadonlyMap<number, string>;
  /** PEM contents; when set, both peer traffic (mutual TLS) and the client API use TLS. */
  readonly tls?: { readonly key: string; readonly cert: string; readonly ca: string };
}

interface NodeFlags {
  config?: string;
  tokenMs?: number;
  protocol?: string;
  id?: number;
  data?: string;
  clientListen?: string;
  peerListen?: string;
  peers?: string;
  secretFile?: string;
  join?: true | string;
  electionTimeoutMs?: number;
  heartbeatMs?: number;
  snapshotEvery?: number;
  commitHints?: string;
  logLevel?: string;
  logFormat?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  grpcListen?: string;
  grpcPeers?: string;
}

/** "1=host:port@http://host:port,2=..." as member addresses. */
export function parsePeers(text: string): MemberAddress[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((item) => {
      const match = /^(\d+)=([^@]+)@(https?:\/\/.+)$/.exec(item);
      const id = Number(match?.[1]);
      if (match === null || !Number.isSafeInteger(id) || id < 1) {
        throw new UsageError(`--peers entry '${item}' is not id=host:port@http://host:port`);
      }
      const peerAddress = match[2] as string;
      if (parsePeerAddress(peerAddress) === undefined) {
        throw new UsageError(`--peers entry '${item}': '${peerAddress}' is not host:port`);
      }
      return { id, peerAddress, clientUrl: (match[3] as string).replace(/\/$/, '') };
    });
}

function readConfigFile(path: string): Partial<NodeFlags> & { peersList?: MemberAddress[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null)
    throw new UsageError(`--config ${path}: not an object`);
  const { peers, ...rest } = raw as Record<string, unknown>;
  const out: Partial<NodeFlags> & { peersList?: MemberAddress[] } = { ...(rest as NodeFlags) };
  if (typeof peers === 'string') out.peers = peers;
  else if (Array.isArray(peers)) out.peersList = peers as MemberAddress[];
  return out;
}

function readPem(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${path}: ${(err as Error).message}`);
  }
}

/** The three TLS files, all or none: peers authenticate each other by the CA. */
function tlsOf(
  cert: string | undefined,
  key: string | undefined,
  ca: string | undefined,
): NodeConfig['tls'] {
  if (cert === undefined && key === undefined && ca === undefined) return undefined;
  if (cert === undefined || key === undefined || ca === undefined) {
    throw new UsageError('TLS needs all of --tls-cert, --tls-key and --tls-ca');
  }
  return {
    cert: readPem('--tls-cert', cert),
    key: readPem('--tls-key', key),
    ca: readPem('--tls-ca', ca),
  };
}

/** Merges flags over the config file and checks that the node can start. */
export function resolveConfig(flags: NodeFlags): NodeConfig {
  const file = flags.config === undefined ? {} : readConfigFile(flags.config);
  const pick = <K extends keyof NodeFlags>(k: K): NodeFlags[K] => flags[k] ?? file[k];
  const id = pick('id');
  const data = pick('data');
  const clientListen = pick('clientListen');
  const secretFile = pick('secretFile');
  if (id === undefined || data === undefined || clientListen === undefined) {
    throw new UsageError(
      '--id, --data and --client-listen are required (or give them in --config)',
    );
  }
  if (secretFile === undefined) throw new UsageError('--secret-file is required');
  let secret: string;
  try {
    secret = readFileSync(secretFile, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--secret-file ${secretFile}: ${(err as Error).message}`);
  }
  if (Buffer.byteLength(secret) < 16) throw new UsageError('the secret must be at least 16 bytes');
  if (typeof pick('join') === 'string') {
    throw new UsageError('--join takes seeds only with --protocol gossip');
  }
  const protocol = pick('protocol') ?? 'raft';
  if (protocol !== 'raft' && protocol !== 'multipaxos') {
    throw new UsageError(`--protocol must be raft or multipaxos, got '${protocol}'`);
  }
  if (protocol === 'multipaxos' && pick('join') === true) {
    throw new UsageError('--join needs membership changes, which Multi-Paxos does not implement');
  }
  const peerText = pick('peers');
  const peers = peerText !== undefined ? parsePeers(peerText) : (file.peersList ?? []);
  const peerListen = pick('peerListen');
  const tls = tlsOf(pick('tlsCert'), pick('tlsKey'), pick('tlsCa'));
  if (!peers.some((p) => p.id === id)) {
    if (peerListen === undefined)
      throw new UsageError(`node ${id} is not in --peers; give --peer-listen`);
    const scheme = tls === undefined ? 'http' : 'https';
    peers.push({ id, peerAddress: peerListen, clientUrl: `${scheme}://${clientListen}` });
  }
  // Raft's defaults (150-300 ms elections, 50 ms heartbeats): a failover in well under a
  // second. Pre-vote and check-quorum keep an event-loop stall from deposing a healthy leader.
  const electionTimeoutMs = pick('electionTimeoutMs') ?? 150;
  const heartbeatMs = pick('heartbeatMs') ?? Math.max(1, Math.floor(electionTimeoutMs / 3));
  if (heartbeatMs >= electionTimeoutMs) {
    throw new UsageError('--heartbeat-ms must be below --election-timeout-ms');
  }
  if (protocol === 'multipaxos' && electionTimeoutMs - heartbeatMs < 2) {
    // The leader's read lease must fit strictly between the two.
    throw new UsageError('with multipaxos, --election-timeout-ms must exceed --heartbeat-ms by 2+');
  }
  const grpcListen = pick('grpcListen');
  if (grpcListen !== undefined && parsePeerAddress(grpcListen) === undefined) {
    throw new UsageError(`--grpc-listen '${grpcListen}' is not host:port`);
  }
  const grpcPeersText = pick('grpcPeers');
  const grpcPeers = grpcPeersText === undefined ? undefined : parseGrpcPeers(grpcPeersText);
  const commitHints = pick('commitHints') ?? 'origin';
  if (commitHints !== 'origin' && commitHints !== 'all' && commitHints !== 'off') {
    throw new UsageError(`--commit-hints must be origin, all or off, got '${commitHints}'`);
  }
  return {
    protocol,
    id,
    data,
    clientListen,
    ...(peerListen === undefined ? {} : { peerListen }),
    peers,
    secret,
    join: pick('join') === true,
    electionTimeoutMs,
    heartbeatMs,
    snapshotEvery: pick('snapshotEvery') ?? 10_000,
    commitHints,
    logLevel: logLevelOf(pick('logLevel') ?? 'info'),
    logFormat: logFormatOf(pick('logFormat') ?? 'json'),
    ...(tls === undefined ? {} : { tls }),
    ...(grpcListen === undefined ? {} : { grpcListen }),
    ...(grpcPeers === undefined ? {} : { grpcPeers }),
  };
}

/** "1=http://host:port,2=..." as each member's gRPC URL. */
export function parseGrpcPeers(text: string): Map<number, string> {
  const urls = new Map<number, string>();
  for (const item of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const match = /^(\d+)=(https?:\/\/[^/\s]+)\/?$/.exec(item);
    const id = Number(match?.[1]);
    if (match === null || !Number.isSafeInteger(id) || id < 1) {
      throw new UsageError(`--grpc-peers entry '${item}' is not id=http://host:port`);
    }
    urls.set(id, match[2] as string);
  }
  return urls;
}

/** LogFormat's values, here so `quorate --help` does not load the logger (and pino). */
export const logFormats: readonly LogFormat[] = ['json', 'text'];
/** pino's levels. */
export const logLevels: readonly string[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

function logLevelOf(raw: string): string {
  if (!logLevels.includes(raw)) {
    throw new UsageError(`--log-level must be one of ${logLevels.join(', ')}, got '${raw}'`);
  }
  return raw;
}

export function logFormatOf(raw: string): LogFormat {
  const format = logFormats.find((f) => f === raw);
  if (format === undefined) {
    throw new UsageError(`--log-format must be ${logFormats.join(' or ')}, got '${raw}'`);
  }
  return format;
}

export const nodeCommand: CommandModule = (program, setExitCode) => {
  program
    .command('node')
    .description(commandSummaries.node.description)
    .option('--config <file>', 'JSON file with any of the options below (flags win)')
    .option(
      '--protocol <name>',
      'raft or multipaxos (KV, default raft), totem (ordered broadcast) or gossip (membership)',
    )
    .option('--id <n>', 'this node id', intOption('--id', 1, 2 ** 32 - 1))
    .option('--data <dir>', 'data directory (WAL, hard state, snapshots)')
    .option('--client-listen <host:port>', 'client API listen address')
    .option('--peer-listen <host:port>', 'peer listen address (default: own entry in --peers)')
    .option('--peers <list>', 'members: id=host:port@http://host:port,... (self included)')
    .option('--secret-file <file>', 'file holding the cluster secret (>= 16 bytes)')
    .option(
      '--join [seeds]',
      'start empty and wait to be added to an existing cluster; gossip: seeds host:port,...',
    )
    .option(
      '--election-timeout-ms <ms>',
      'minimum election timeout',
      intOption('--election-timeout-ms', 2),
    )
    .option('--heartbeat-ms <ms>', 'leader heartbeat interval', intOption('--heartbeat-ms', 1))
    .option(
      '--snapshot-every <n>',
      'compact the log every n entries',
      intOption('--snapshot-every', 1),
    )
    .option(
      '--commit-hints <who>',
      'Raft: followers told of commits early: origin (that forwarded the write), all, off',
    )
    .option('--log-level <level>', 'pino level: debug, info, warn, error')
    .option('--log-format <format>', 'json (one object a line, the default) or text (for people)')
    .option('--grpc-listen <host:port>', "etcd v3 gRPC API listen address (etcdctl's endpoint)")
    .option('--grpc-peers <list>', "members' gRPC URLs for member list: id=http://host:port,...")
    .option('--tls-cert <file>', 'PEM certificate: TLS for peer traffic and the client API')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--tls-ca <file>', "PEM CA that signed every node's certificate")
    .option('--token-ms <ms>', 'Totem: token timeout of a ring of two', intOption('--token-ms', 1))
    .option(
      '--datagram-crypto <mode>',
      'Totem: aes-256-gcm (default) or insecure-none (no encryption or authentication: benchmarks and trusted networks only)',
    )
    .option('--cluster <name>', 'gossip: cluster name, bound into every datagram (default quorate)')
    .option('--tags <k=v,...>', "gossip: this node's tags")
    .option(
      '--advertise-host <host>',
      'gossip: the host others reach us at (default the bind host)',
    )
    .option(
      '--probe-interval-ms <ms>',
      'gossip: probe interval',
      intOption('--probe-interval-ms', 2),
    )
    .option(
      '--gossip-interval-ms <ms>',
      'gossip: gossip interval',
      intOption('--gossip-interval-ms', 1),
    )
    .option(
      '--reap-dead-ms <ms>',
      'gossip: forget dead members after',
      intOption('--reap-dead-ms', 1),
    )
    .option('--store <kind>', 'gossip: serve the anti-entropy store too (merkle)')
    .option(
      '--store-write-rate <n>',
      'gossip --store: local writes a second accepted, in bursts of a second (429 with retry-after above it; default no limit)',
      intOption('--store-write-rate', 1),
    )
    .option(
      '--unsafe-store-faults',
      'gossip --store, tests and benches only: POST /v1/store-faults drops repair traffic to chosen peers',
    )
    .option(
      '--repair-interval-ms <ms>',
      'gossip --store: one Merkle repair with a random live peer this often (default 1000)',
      intOption('--repair-interval-ms', 1),
    )
    .option(
      '--reap-left-ms <ms>',
      'gossip: forget left members after',
      intOption('--reap-left-ms', 1),
    )
    .action(async (flags: NodeFlags & GossipNodeFlags) => {
      if (flags.protocol === 'totem') {
        const { runRingNode } = await import('./ring-node.ts');
        setExitCode(await runRingNode(flags));
        return;
      }
      if (flags.protocol === 'gossip') {
        const { runGossipNode } = await import('./gossip-node.ts');
        setExitCode(await runGossipNode(flags));
        return;
      }
      const config = resolveConfig(flags);
      // The engines, the HTTP server and their packages load only for a node that runs.
      const { runNode } = await import('./node-run.ts');
      setExitCode(await runNode(config));
    });
};
