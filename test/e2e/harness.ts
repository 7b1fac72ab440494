import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalCluster, startLocalCluster } from '../../src/cli/commands/up.ts';
import type { StatusResponse } from '../../src/client/wire.ts';
import type { NodeId } from '../../src/kernel/ids.ts';
import { freePortRange } from './ports.ts';

/**
 * Shared pieces of the end-to-end tests: real `quorate node` processes started through
 * `startLocalCluster` in a temp directory on a free port range, and bounded polling.
 */
export interface TestCluster {
  readonly cluster: LocalCluster;
  readonly dir: string;
  readonly portBase: number;
  /** Kills every process this test started, then removes the data. */
  cleanup(): Promise<void>;
}

/** Timings for test clusters: quick failover, still far above heartbeats on a busy machine. */
export const testNodeArgs = ['--election-timeout-ms', '400', '--heartbeat-ms', '50'];

/** Ports reserved per test cluster: room for `nodesMax` nodes (client + peer each). */
export async function startTestCluster(
  nodes: number,
  nodeArgs: readonly string[] = [],
  nodesMax = nodes,
  options: { readonly tls?: boolean } = {},
): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'quorate-e2e-'));
  const portBase = await freePortRange(2 * nodesMax);
  const cluster = await startLocalCluster({
    nodes,
    dataDir: dir,
    portBase,
    nodeArgs: [...testNodeArgs, '--log-level', 'info', ...nodeArgs],
    readyTimeoutMs: 60_000,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  return {
    cluster,
    dir,
    portBase,
    async cleanup() {
      await cluster.stopAll(2000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function statusOf(url: string): Promise<StatusResponse | undefined> {
  try {
    const res = await fetch(`${url}/v1/status`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? ((await res.json()) as StatusResponse) : undefined;
  } catch {
    return undefined;
  }
}

export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The leader every running node agrees on, once they do. */
export async function waitForLeader(c: LocalCluster, timeoutMs = 20_000): Promise<NodeId> {
  return waitUntil(
    'a leader all running nodes agree on',
    async () => {
      const running = c.nodes.filter((n) => c.isRunning(n.id));
      const statuses = await Promise.all(running.map((n) => statusOf(n.clientUrl)));
      const leader = statuses[0]?.leader;
      if (leader === undefined || leader === 0) return undefined;
      if (!statuses.every((s) => s?.leader === leader)) return undefined;
      const own = statuses.find((s) => s?.id === leader);
      return own?.role === 'leader' ? leader : undefined;
    },
    timeoutMs,
  );
}

export function urlOf(c: LocalCluster, id: NodeId): string {
  const node = c.nodes.find((n) => n.id === id);
  if (node === undefined) throw new Error(`no node ${id}`);
  return node.clientUrl;
}

export async function putVia(url: string, key: string, value: string): Promise<Response> {
  return fetch(`${url}/v1/kv/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value }),
    signal: AbortSignal.timeout(10_000),
  });
}

export async function getVia(
  url: string,
  key: string,
  consistency: 'linearizable' | 'stale' = 'linearizable',
): Promise<string | null> {
  const res = await fetch(`${url}/v1/kv/${encodeURIComponent(key)}?consistency=${consistency}`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET ${key} via ${url}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { entry: { value: string } | null };
  return body.entry?.value ?? null;
}
