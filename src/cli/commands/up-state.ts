import { readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import type { QuorateClient } from '../../client/client.ts';
import { QuorateError } from '../../client/errors.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { UsageError } from '../program.ts';
import type { ClusterFile } from './client-options.ts';
import type { LocalCluster, LocalNode } from './up.ts';

/**
 * What `quorate up` keeps in <data>/cluster.json between runs and for the other commands:
 * the running members' client URLs (the CLI's default --endpoints), the CA with TLS, and
 * the ids the cluster retired. Retired ids come from the cluster's own tombstones (a
 * removal commits one per id, see src/server/raft-members.ts), read through the API.
 */
export interface UpState extends ClusterFile {
  readonly retired: readonly NodeId[];
  readonly dashboard?: string;
  /** The running members' etcd v3 gRPC URLs. */
  readonly grpcEndpoints?: readonly string[];
}

export const clusterFileName = 'cluster.json';

/** The tombstone key of a removed member; the server's REMOVED_PREFIX, read-only to clients. */
const tombstoneKey = (id: NodeId) => `\u0000quorate/removed/${id}`;

/** The retired ids a previous `quorate up` recorded in `dataDir` (none without a file). */
export async function recordedRetired(dataDir: string): Promise<NodeId[]> {
  let text: string;
  try {
    text = await readFile(join(dataDir, clusterFileName), 'utf8');
  } catch {
    return [];
  }
  try {
    const retired = (JSON.parse(text) as Partial<UpState>).retired;
    return Array.isArray(retired) ? retired.filter((id) => Number.isSafeInteger(id)) : [];
  } catch {
    return [];
  }
}

/** Whether the cluster holds a tombstone for `id`: it was removed and the id is retired. */
export async function isRetired(client: QuorateClient, id: NodeId): Promise<boolean> {
  try {
    return (await client.get(tombstoneKey(id))).entry !== null;
  } catch (err) {
    if (err instanceof QuorateError) return false;
    throw err;
  }
}

/** Writes the state file whole (a reader never sees half of one). */
export async function writeUpState(dataDir: string, state: UpState): Promise<void> {
  const path = join(dataDir, clusterFileName);
  const tmp = `${path}.tmp`;
  const ca = state.ca === undefined ? {} : { ca: relative(dataDir, state.ca) };
  await writeFile(tmp, `${JSON.stringify({ ...state, ...ca }, null, 2)}\n`);
  await rename(tmp, path);
}

/** The state of a running cluster: running members' endpoints and the retired ids. */
export function upStateOf(
  cluster: LocalCluster,
  retired: ReadonlySet<NodeId>,
  dashboard: string | undefined,
): UpState {
  const live = cluster.nodes.filter((n) => !retired.has(n.id));
  return {
    endpoints: live.map((n) => n.clientUrl),
    ...(live.some((n) => n.grpcUrl !== undefined)
      ? { grpcEndpoints: live.flatMap((n) => (n.grpcUrl === undefined ? [] : [n.grpcUrl])) }
      : {}),
    ...(cluster.tls === undefined ? {} : { ca: cluster.tls.ca }),
    retired: [...retired].sort((a, b) => a - b),
    ...(dashboard === undefined ? {} : { dashboard }),
  };
}

/** The steps that bring a cluster back to its size after `id` was retired. */
export function replacementHint(
  retiredId: NodeId,
  next: LocalNode,
  secretFile: string,
  peers: string,
): string {
  const host = new URL(next.clientUrl).host;
  return [
    `node ${retiredId} was removed from the cluster: its id is retired, and quorate up does not start it.`,
    `  To add a replacement (as node ${next.id}) while this cluster runs:`,
    `    npx quorate member add ${next.id} ${next.peerAddress} ${next.clientUrl}`,
    `    npx quorate node --id ${next.id} --join --data ${next.dataDir} --client-listen ${host} \\`,
    `      --peer-listen ${next.peerAddress} --secret-file ${secretFile} --peers ${peers}`,
    `    npx quorate member promote ${next.id}`,
  ].join('\n');
}

/** Refuses to start when a port the cluster needs is taken, naming it (exit 2, not a trace). */
export async function assertPortsFree(
  host: string,
  ports: readonly { readonly port: number; readonly what: string }[],
): Promise<void> {
  for (const { port, what } of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, host, () => server.close(() => resolve(true)));
    });
    if (!free) {
      throw new UsageError(
        `port ${port} on ${host} (${what}) is in use: is another quorate up running? Stop it, or choose other ports with --port-base (and --dashboard-port)`,
      );
    }
  }
}
