import { readFileSync } from 'node:fs';
import type { PeerAddress } from '../../runtime/transport/transport.ts';
import type { GossipAgent, GossipTunables } from '../../server/gossip-agent.ts';
import type { GossipStore } from '../../server/gossip-store.ts';
import type { LogFormat } from '../../server/logger.ts';
import { parsePeerAddress } from '../../server/raft-members.ts';
import { EXIT, UsageError } from '../program.ts';

/**
 * `quorate node --protocol gossip`: one gossip membership agent.
 *
 *   quorate node --protocol gossip --data ./data/g1 --client-listen 127.0.0.1:8001 \
 *     --peer-listen 127.0.0.1:7946 --secret-file ./secret --join 127.0.0.1:7947,127.0.0.1:7948
 *
 * `--peer-listen` is both the UDP (probes, rumours) and the TCP (push-pull) port;
 * `--client-listen` the HTTP API. `--id` is optional: a new data directory gets a random
 * id and keeps it. Prints `quorate node <id> ready: client <url> peer <host:port>` once it
 * serves. SIGTERM or SIGINT: a graceful leave (others see "left", not "dead"), then exit 0.
 */
export interface GossipNodeFlags {
  readonly id?: number;
  readonly data?: string;
  readonly clientListen?: string;
  readonly peerListen?: string;
  readonly secretFile?: string;
  readonly join?: string | true;
  readonly cluster?: string;
  readonly tags?: string;
  readonly advertiseHost?: string;
  readonly probeIntervalMs?: number;
  readonly gossipIntervalMs?: number;
  readonly reapDeadMs?: number;
  readonly reapLeftMs?: number;
  readonly logLevel?: string;
  readonly logFormat?: string;
  readonly store?: string;
  readonly repairIntervalMs?: number;
  readonly unsafeStoreFaults?: boolean;
  readonly storeWriteRate?: number;
}

export interface GossipNodeConfig {
  readonly id: number | undefined;
  readonly data: string;
  readonly clientListen: PeerAddress;
  readonly peerListen: PeerAddress;
  readonly secret: string;
  readonly seeds: readonly PeerAddress[];
  readonly cluster: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly advertiseHost: string | undefined;
  readonly core: Partial<GossipTunables>;
  readonly logLevel: string;
  readonly logFormat: LogFormat;
  /** The anti-entropy store served beside membership (gossip-store.ts), or none. */
  readonly store: 'merkle' | undefined;
  readonly repairIntervalMs: number | undefined;
  readonly unsafeStoreFaults: boolean;
  /** Local writes a second the store accepts (429 above it); undefined: no limit. */
  readonly storeWriteRate: number | undefined;
}

/** host:port; a listen address may take port 0 (any free port). */
function address(flag: string, text: string, listen = false): PeerAddress {
  const t = text.trim();
  const a =
    listen && t.endsWith(':0') ? parsePeerAddress(`${t.slice(0, -2)}:1`) : parsePeerAddress(t);
  if (a === undefined) throw new UsageError(`${flag} '${text}' is not host:port`);
  return listen && t.endsWith(':0') ? { host: a.host, port: 0 } : a;
}

/** "k=v,k2=v2" as tags. */
export function parseTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const item of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--tags entry '${item}' is not key=value`);
    tags[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return tags;
}

export function resolveGossipConfig(f: GossipNodeFlags): GossipNodeConfig {
  if (f.data === undefined || f.clientListen === undefined || f.secretFile === undefined) {
    throw new UsageError('--data, --client-listen and --secret-file are required');
  }
  let secret: string;
  try {
    secret = readFileSync(f.secretFile, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--secret-file ${f.secretFile}: ${(err as Error).message}`);
  }
  if (Buffer.byteLength(secret) < 16) throw new UsageError('the secret must be at least 16 bytes');
  if (f.join === true)
    throw new UsageError('--join needs seeds with --protocol gossip: host:port,...');
  const seeds = (f.join ?? '')
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => address('--join', s));
  const core: Partial<GossipTunables> = {
    ...(f.probeIntervalMs === undefined
      ? {}
      : {
          probeIntervalMs: f.probeIntervalMs,
          probeTimeoutMs: Math.max(1, Math.floor(f.probeIntervalMs / 2)),
        }),
    ...(f.gossipIntervalMs === undefined ? {} : { gossipIntervalMs: f.gossipIntervalMs }),
    ...(f.reapDeadMs === undefined ? {} : { reapDeadMs: f.reapDeadMs }),
    ...(f.reapLeftMs === undefined ? {} : { reapLeftMs: f.reapLeftMs }),
  };
  const logFormat = f.logFormat ?? 'json';
  if (logFormat !== 'json' && logFormat !== 'text') {
    throw new UsageError(`--log-format must be json or text, got '${logFormat}'`);
  }
  if (f.store !== undefined && f.store !== 'merkle') {
    throw new UsageError(`--store must be merkle, got '${f.store}'`);
  }
  return {
    store: f.store,
    repairIntervalMs: f.repairIntervalMs,
    unsafeStoreFaults: f.unsafeStoreFaults === true,
    storeWriteRate: f.storeWriteRate,
    id: f.id,
    data: f.data,
    clientListen: address('--client-listen', f.clientListen, true),
    peerListen: address('--peer-listen', f.peerListen ?? '127.0.0.1:7946', true),
    secret,
    seeds,
    cluster: f.cluster ?? 'quorate',
    tags: f.tags === undefined ? {} : parseTags(f.tags),
    advertiseHost: f.advertiseHost,
    core,
    logLevel: f.logLevel ?? 'info',
    logFormat,
  };
}

/** Runs the agent until SIGTERM/SIGINT, then leaves gracefully; resolves with the exit code. */
export async function runGossipNode(flags: GossipNodeFlags): Promise<number> {
  const config = resolveGossipConfig(flags);
  const { GossipAgent: Agent } = await import('../../server/gossip-agent.ts');
  const { createGossipServer } = await import('../../server/gossip-routes.ts');
  const { createLogger } = await import('../../server/logger.ts');
  const logger = createLogger(config.id ?? 0, { level: config.logLevel, format: config.logFormat });
  let agent: GossipAgent;
  try {
    agent = await Agent.start({
      dataDir: config.data,
      ...(config.id === undefined ? {} : { id: config.id }),
      clusterName: config.cluster,
      secret: config.secret,
      bind: config.peerListen,
      ...(config.advertiseHost === undefined ? {} : { advertiseHost: config.advertiseHost }),
      seeds: config.seeds,
      tags: config.tags,
      core: config.core,
      logger,
    });
  } catch (err) {
    process.stderr.write(`quorate node (gossip): ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  let store: GossipStore | undefined;
  if (config.store !== undefined) {
    const { GossipStore: Store } = await import('../../server/gossip-store.ts');
    try {
      store = await Store.open({
        agent,
        dataDir: config.data,
        logger,
        unsafeTestingFaults: config.unsafeStoreFaults,
        core: {
          ...(config.repairIntervalMs === undefined
            ? {}
            : { repairIntervalMs: config.repairIntervalMs }),
          // A burst of one second's writes.
          ...(config.storeWriteRate === undefined
            ? {}
            : {
                writeRatePerSecondMax: config.storeWriteRate,
                writeBurstMax: config.storeWriteRate,
              }),
        },
      });
    } catch (err) {
      process.stderr.write(`quorate node ${agent.id}: store: ${(err as Error).message}\n`);
      await agent.stop();
      return EXIT.usage;
    }
  }
  const server = createGossipServer(agent, logger, store);
  let url: string;
  try {
    url = await server.listen(config.clientListen.host, config.clientListen.port);
  } catch (err) {
    process.stderr.write(`quorate node ${agent.id}: HTTP API: ${(err as Error).message}\n`);
    await store?.stop();
    await agent.stop();
    return EXIT.usage;
  }
  process.stdout.write(`quorate node ${agent.id} ready: client ${url} peer ${agent.address}\n`);
  const why = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ why }, 'leaving the cluster');
  await agent.leave().catch(() => {});
  await server.close();
  await store?.stop();
  await agent.stop();
  logger.info('stopped');
  return EXIT.ok;
}
