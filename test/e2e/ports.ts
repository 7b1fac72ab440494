import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Ports for test processes that must be told their ports before they start (every member
 * needs every peer's address), and that restart on the same port after a kill.
 *
 * They come from below the kernel's ephemeral range. A port inside it can be handed, while
 * its node is down, to another test's `listen(0)` (a server or engine on "any free port"),
 * and the restarted node then fails to listen (EADDRINUSE). Each port is checked free by
 * binding it once; a collision then needs another test to pick the same random port in
 * between, and a failed listen fails the test loudly.
 */
const LOWEST = 10_000;
const EPHEMERAL_LOW_DEFAULT = 32_768;

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/);
    const port = Number(low);
    return Number.isInteger(port) && port > LOWEST + 1000 ? port : EPHEMERAL_LOW_DEFAULT;
  } catch {
    return EPHEMERAL_LOW_DEFAULT; // not Linux: Linux's default is a fair guess elsewhere
  }
}

/** Ports in [LOWEST, top): below the ephemeral range. */
const top = ephemeralLow();

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function randomPort(span: number): number {
  return LOWEST + Math.floor(Math.random() * (top - LOWEST - span));
}

/** `count` distinct ports free right now, each chosen at random below the ephemeral range. */
export async function freePorts(count: number, attempts = 20 * count): Promise<number[]> {
  const chosen = new Set<number>();
  for (let i = 0; i < attempts && chosen.size < count; i++) {
    const port = randomPort(1);
    if (!chosen.has(port) && (await portFree(port))) chosen.add(port);
  }
  if (chosen.size < count) throw new Error(`no ${count} free ports found in ${attempts} attempts`);
  return [...chosen];
}

/**
 * A base port with `count` consecutive free ports after it, for a cluster laid out from a
 * base (client and peer port per node). Tries random bases a bounded number of times, so
 * parallel test files rarely pick overlapping ranges.
 */
export async function freePortRange(count: number, attempts = 20): Promise<number> {
  for (let i = 0; i < attempts; i++) {
    const base = randomPort(count);
    const checks = await Promise.all(Array.from({ length: count }, (_, k) => portFree(base + k)));
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found in ${attempts} attempts`);
}
