import { resolve } from 'node:path';
import { EXIT, UsageError } from '../program.ts';
import { startLocalCluster } from './up.ts';

/**
 * `quorate up --protocol totem`: N `quorate node --protocol totem` processes on 127.0.0.1
 * (node i: HTTP on portBase + 2(i-1), UDP peers on the port after), then their endpoints
 * once one ring of all of them formed; Ctrl-C stops them.
 */
export interface RingUpFlags {
  readonly nodes: number;
  readonly data: string;
  readonly portBase: number;
  readonly tls: boolean;
  readonly json?: true;
}

interface RingStatus {
  readonly state: string;
  readonly ring: string;
  readonly members: readonly number[];
}

async function ringOf(url: string): Promise<RingStatus | undefined> {
  try {
    const res = await fetch(`${url}/ring`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? ((await res.json()) as RingStatus) : undefined;
  } catch {
    return undefined;
  }
}

export async function runRingUp(flags: RingUpFlags): Promise<number> {
  if (flags.tls) {
    throw new UsageError('--tls is for the KV protocols; Totem seals its UDP with the secret');
  }
  const cluster = await startLocalCluster({
    nodes: flags.nodes,
    dataDir: resolve(flags.data),
    portBase: flags.portBase,
    nodeArgs: ['--protocol', 'totem'],
    onExit: (node, code, signal) => {
      const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
      process.stderr.write(`node ${node.id} stopped: ${how}; log ${node.logFile}\n`);
    },
  });
  const urls = cluster.nodes.map((n) => n.clientUrl);
  for (const n of cluster.nodes) {
    process.stdout.write(`node ${n.id}: http ${n.clientUrl}  udp ${n.peerAddress}\n`);
  }
  // Bounded: the first ring forms within a consensus timeout or two.
  let ring: RingStatus | undefined;
  for (let i = 0; i < 300 && ring === undefined; i++) {
    const all = await Promise.all(urls.map(ringOf));
    const first = all[0];
    const one = all.every(
      (s) =>
        s?.state === 'operational' && s.ring === first?.ring && s.members.length === urls.length,
    );
    if (one) ring = first;
    else await new Promise((r) => setTimeout(r, 100));
  }
  if (ring === undefined) process.stderr.write('no ring of every node yet; see the logs\n');
  else process.stdout.write(`ring ${ring.ring}: members ${ring.members.join(',')}\n`);
  if (flags.json) {
    const endpoints = cluster.nodes.map((n) => ({ id: n.id, url: n.clientUrl }));
    process.stdout.write(`${JSON.stringify({ protocol: 'totem', ring: ring?.ring, endpoints })}\n`);
  }
  process.stdout.write('Ctrl-C stops the cluster\n');
  await new Promise<void>((done) => {
    process.once('SIGINT', () => done());
    process.once('SIGTERM', () => done());
  });
  await cluster.stopAll();
  return EXIT.ok;
}
