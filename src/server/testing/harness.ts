/** TEST HARNESS ONLY: servers over MemoryEngines on ephemeral loopback ports. */
import { createServer, type QuorateServer, type ServerOptions } from '../server.ts';
import { MemoryEngine, type MemoryEngineOptions } from './memory-engine.ts';

export interface TestNode {
  readonly engine: MemoryEngine;
  readonly server: QuorateServer;
  readonly url: string;
}

/** Starts a server on 127.0.0.1 with a free port; pass the result to `stopNodes` after. */
export async function startNode(
  engine: MemoryEngineOptions | MemoryEngine,
  options: Omit<ServerOptions, 'engine'> = {},
): Promise<TestNode> {
  const memory = engine instanceof MemoryEngine ? engine : new MemoryEngine(engine);
  const server = createServer({ ...options, engine: memory });
  const url = await server.listen('127.0.0.1', 0);
  return { engine: memory, server, url };
}

export async function stopNodes(...nodes: readonly TestNode[]): Promise<void> {
  for (const node of nodes) node.engine.releaseHung();
  await Promise.all(nodes.map((n) => n.server.close()));
}

/** A fetch with JSON in and out, for tests that look at status codes and bodies. */
export async function request(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { 'content-type': 'application/json', ...headers };
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (metrics text): keep the text.
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
