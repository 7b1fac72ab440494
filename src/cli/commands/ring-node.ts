import { readFileSync } from 'node:fs';
import {
  DATAGRAM_CRYPTO_MODES,
  type DatagramCrypto,
} from '../../runtime/transport/udp-transport.ts';
import { UsageError } from '../program.ts';
import { parsePeers } from './node.ts';

/**
 * `quorate node --protocol totem`: the flags a Totem node takes (the same --id, --data,
 * --client-listen, --peers and --secret-file as a KV node; each peer address is a UDP port
 * here), then the node until SIGTERM or SIGINT.
 */
export interface RingNodeFlags {
  readonly id?: number;
  readonly data?: string;
  readonly clientListen?: string;
  readonly peers?: string;
  readonly secretFile?: string;
  readonly tokenMs?: number;
  readonly datagramCrypto?: string;
}

function hostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`${what} '${text}' is not host:port`);
  }
  return { host: m[1] as string, port };
}

export async function runRingNode(flags: RingNodeFlags): Promise<number> {
  const { id, data, clientListen, secretFile } = flags;
  if (id === undefined || data === undefined || clientListen === undefined) {
    throw new UsageError('--id, --data and --client-listen are required');
  }
  if (flags.peers === undefined) throw new UsageError('--peers is required');
  if (secretFile === undefined) throw new UsageError('--secret-file is required');
  let secret: string;
  try {
    secret = readFileSync(secretFile, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--secret-file ${secretFile}: ${(err as Error).message}`);
  }
  if (Buffer.byteLength(secret) < 16) throw new UsageError('the secret must be at least 16 bytes');
  const peers = parsePeers(flags.peers).map((p) => ({
    id: p.id,
    ...hostPort(p.peerAddress, '--peers address'),
  }));
  if (!peers.some((p) => p.id === id)) throw new UsageError(`--peers must include node ${id}`);
  const client = hostPort(clientListen, '--client-listen');
  const crypto = (flags.datagramCrypto ?? 'aes-256-gcm') as DatagramCrypto;
  if (!DATAGRAM_CRYPTO_MODES.includes(crypto)) {
    throw new UsageError(
      `--datagram-crypto must be ${DATAGRAM_CRYPTO_MODES.join(' or ')}, got '${crypto}'`,
    );
  }
  if (crypto === 'insecure-none') {
    process.stderr.write(
      'WARNING: --datagram-crypto insecure-none: peer datagrams are neither encrypted nor authenticated; benchmarks and trusted networks only\n',
    );
  }
  const { TotemNodeServer } = await import('../../server/totem-node.ts');
  const server = await TotemNodeServer.start({
    id,
    peers,
    clientHost: client.host,
    clientPort: client.port,
    dataDir: data,
    secret,
    clusterName: 'quorate-totem',
    ...(flags.tokenMs === undefined ? {} : { tokenBaseMs: flags.tokenMs }),
    datagramCrypto: crypto,
  });
  const self = peers.find((p) => p.id === id)!;
  process.stdout.write(
    `quorate totem node ${id} ready: client ${server.clientUrl} peer udp ${self.host}:${self.port}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await server.stop();
  return 0;
}
