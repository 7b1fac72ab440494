import { WalCorruptionError } from '../../runtime/storage/wal.ts';
import type { EtcdServer } from '../../server/etcd/server.ts';
import { createLogger } from '../../server/logger.ts';
import { ServerMetrics } from '../../server/metrics.ts';
import { MultiPaxosEngine } from '../../server/multipaxos-engine.ts';
import { RaftEngine } from '../../server/raft-engine.ts';
import { parsePeerAddress } from '../../server/raft-members.ts';
import { createServer } from '../../server/server.ts';
import { packageVersion } from '../package-root.ts';
import { EXIT, UsageError } from '../program.ts';
import type { NodeConfig } from './node.ts';

/**
 * What `quorate node` runs once its flags are resolved (node.ts): the engine, the client
 * API and the shutdown sequence. Kept apart so `quorate --help` and the client commands do
 * not load the server, the engines and their packages.
 */

/** How long a Raft leader may hold back a commit notice (RaftOptions.commitNoticeDelayMs). */
const COMMIT_NOTICE_DELAY_MS = 10;

/** Runs the node until SIGTERM/SIGINT; resolves with the exit code. */
export async function runNode(config: NodeConfig): Promise<number> {
  const logger = createLogger(config.id, { level: config.logLevel, format: config.logFormat });
  const metrics = new ServerMetrics({ processMetrics: true, version: packageVersion() });
  const listen = parsePeerAddress(config.clientListen);
  if (listen === undefined)
    throw new UsageError(`--client-listen '${config.clientListen}' is not host:port`);
  const peerListen =
    config.peerListen === undefined ? undefined : parsePeerAddress(config.peerListen);
  // Why the node stops: a signal, or its removal from the cluster (its id is retired then).
  let stopFor: (why: NodeJS.Signals | 'removed') => void = () => {};
  const stopping = new Promise<NodeJS.Signals | 'removed'>((resolve) => {
    stopFor = resolve;
  });
  const onRemoved = () => stopFor('removed');
  let engine: RaftEngine | MultiPaxosEngine;
  try {
    engine = await openEngine(config, peerListen, metrics, logger, onRemoved);
  } catch (err) {
    if (err instanceof WalCorruptionError) {
      process.stderr.write(`quorate node ${config.id}: refusing to start: ${err.message}\n`);
      return EXIT.violation;
    }
    throw err;
  }
  const server = createServer({
    engine,
    metrics,
    logger,
    // Tokens verify on every member of the cluster and on both APIs: keyed by its secret.
    auth: { secret: config.secret },
    ...(config.tls === undefined ? {} : { tls: config.tls }),
  });
  const grpc =
    config.grpcListen === undefined ? undefined : await etcdServerOf(config, engine, logger);
  let clientUrl: string;
  let grpcUrl: string | undefined;
  try {
    await engine.start();
    clientUrl = await server.listen(listen.host, listen.port);
    const grpcListen =
      config.grpcListen === undefined ? undefined : parsePeerAddress(config.grpcListen);
    if (grpc !== undefined && grpcListen !== undefined) {
      grpcUrl = await grpc.listen(grpcListen.host, grpcListen.port);
    }
  } catch (err) {
    const why = listenFailure(err);
    if (why === undefined) throw err;
    process.stderr.write(`quorate node ${config.id}: ${why}\n`);
    await grpc?.close();
    await server.close();
    await engine.stop();
    return EXIT.usage;
  }
  const self = config.peers.find((p) => p.id === config.id);
  process.stdout.write(
    `quorate node ${config.id} ready: client ${clientUrl} peer ${config.peerListen ?? self?.peerAddress}${grpcUrl === undefined ? '' : ` grpc ${grpcUrl}`}\n`,
  );
  process.once('SIGTERM', () => stopFor('SIGTERM'));
  process.once('SIGINT', () => stopFor('SIGINT'));
  const why = await stopping;
  if (why === 'removed') {
    logger.warn(
      { dataDir: config.data },
      'removed from the cluster: its id is retired, its data may be deleted',
    );
  }
  logger.info({ why }, 'shutting down');
  await grpc?.close();
  await server.close();
  await engine.stop();
  logger.info('stopped');
  return EXIT.ok;
}

/** etcd's v3 gRPC API beside the HTTP one; its packages load only for a node that serves it. */
async function etcdServerOf(
  config: NodeConfig,
  engine: RaftEngine | MultiPaxosEngine,
  logger: ReturnType<typeof createLogger>,
): Promise<EtcdServer> {
  const { createEtcdServer } = await import('../../server/etcd/server.ts');
  return createEtcdServer({
    engine,
    clusterSecret: config.secret,
    version: packageVersion(),
    dataDir: config.data,
    logger,
    ...(config.tls === undefined ? {} : { tls: config.tls }),
    ...(config.grpcPeers === undefined ? {} : { grpcUrls: config.grpcPeers }),
  });
}

/** A clear line for a socket that could not listen (port taken, not allowed, no such address). */
function listenFailure(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const reasons: Record<string, string> = {
    EADDRINUSE: 'the address is already in use',
    EACCES: 'permission denied',
    EADDRNOTAVAIL: 'no such local address',
  };
  const reason = e?.syscall === 'listen' && e.code !== undefined ? reasons[e.code] : undefined;
  if (reason === undefined) return undefined;
  return `cannot listen on ${e.address ?? '?'}:${e.port ?? '?'}: ${reason}`;
}

function openEngine(
  config: NodeConfig,
  peerListen: { host: string; port: number } | undefined,
  metrics: ServerMetrics,
  logger: ReturnType<typeof createLogger>,
  onRemoved: () => void,
): Promise<RaftEngine | MultiPaxosEngine> {
  const onFatal = (err: unknown) => {
    logger.fatal({ err }, 'exiting: storage failed');
    process.exit(1);
  };
  if (config.protocol === 'multipaxos') {
    const heartbeat = config.heartbeatMs;
    const election = config.electionTimeoutMs;
    // A leader's read lease must outlast a heartbeat and end before anyone may campaign.
    const lease = heartbeat + Math.max(1, Math.floor((election - heartbeat) / 2));
    return MultiPaxosEngine.open({
      id: config.id,
      dataDir: config.data,
      members: config.peers,
      secret: config.secret,
      ...(peerListen === undefined ? {} : { peerListen }),
      ...(config.tls === undefined ? {} : { tls: config.tls }),
      paxos: {
        electionTimeoutMinMs: election,
        electionTimeoutMaxMs: 2 * election,
        heartbeatIntervalMs: heartbeat,
        leaseDurationMs: lease,
        clockDriftMarginMs: Math.min(20, Math.floor(lease / 5)),
      },
      replica: { snapshotEveryInstances: config.snapshotEvery },
      metrics,
      logger,
      onFatal,
    });
  }
  return RaftEngine.open({
    id: config.id,
    dataDir: config.data,
    members: config.peers,
    join: config.join,
    secret: config.secret,
    ...(peerListen === undefined ? {} : { peerListen }),
    ...(config.tls === undefined ? {} : { tls: config.tls }),
    raft: {
      electionTimeoutMinMs: config.electionTimeoutMs,
      electionTimeoutMaxMs: 2 * config.electionTimeoutMs,
      heartbeatIntervalMs: config.heartbeatMs,
      // Under light load the next append carries the commit index (one message per write to
      // each follower instead of two); followers then apply up to 10 ms later.
      commitNoticeDelayMs: Math.min(COMMIT_NOTICE_DELAY_MS, config.heartbeatMs),
      commitHints: config.commitHints,
    },
    replica: { snapshotEveryEntries: config.snapshotEvery },
    metrics,
    logger,
    onFatal,
    onRemoved,
  });
}
