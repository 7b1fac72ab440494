import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusResponse } from '../../src/client/wire.ts';
import type { NodeId } from '../../src/kernel/ids.ts';
import {
  startTestCluster,
  statusOf,
  type TestCluster,
  urlOf,
  waitForLeader,
  waitUntil,
} from './harness.ts';

/**
 * A removed member is forgotten: once its removal commits, no node dials its peer address,
 * and none does after the whole cluster restarts either (a listener on that address counts
 * every connection attempt). Before, every node redialed a removed member every 2-5 s for ever.
 */
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster(3, [], 4);
}, 90_000);

afterAll(async () => {
  await t?.cleanup();
});

async function admin(url: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${url}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  });
  expect(res.status, `${method} ${path}: ${await res.text()}`).toBe(200);
}

function roleOf(s: StatusResponse | undefined, id: NodeId): string | undefined {
  return s?.members.find((m) => m.id === id)?.role;
}

/** Counts the connections made to `address` (host:port) while it listens. */
async function countDials(address: string): Promise<{ count: () => number; server: Server }> {
  const [, host, port] = /^(.*):(\d+)$/.exec(address) ?? [];
  let dials = 0;
  const server = createServer((socket) => {
    dials += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), host, () => resolve());
  });
  return { count: () => dials, server };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a removed learner', () => {
  it('is dialed by no node once removed, also after the cluster restarts', async () => {
    const c = t.cluster;
    const leader = await waitForLeader(c);
    const learner = c.addNode(4);
    await c.start(4, ['--join']);
    await admin(urlOf(c, leader), 'POST', '/v1/members', {
      id: 4,
      peerAddress: learner.peerAddress,
      clientUrl: learner.clientUrl,
    });
    await waitUntil('node 4 to join as a learner', async () =>
      roleOf(await statusOf(learner.clientUrl), 4) === 'learner' ? true : undefined,
    );
    await admin(urlOf(c, leader), 'DELETE', '/v1/members/4');
    await waitUntil('node 4 to stop itself', async () => (c.isRunning(4) ? undefined : true));
    expect(await c.kill(4)).toBe(0);

    const dials = await countDials(learner.peerAddress);
    try {
      // Peer links redial with backoff capped at a few seconds: 6 s would see several.
      await sleep(6000);
      expect(dials.count()).toBe(0);
      const members = c.nodes.filter((n) => n.id !== 4);
      for (const n of members) {
        expect(await c.kill(n.id, 'SIGTERM')).toBe(0);
      }
      for (const n of members) await c.start(n.id);
      const again = await waitForLeader(c);
      const s = await statusOf(urlOf(c, again));
      expect(s?.members.map((m) => m.id).sort()).toEqual([1, 2, 3]);
      await sleep(6000);
      expect(dials.count()).toBe(0);
    } finally {
      await new Promise((resolve) => dials.server.close(resolve));
    }
  }, 120_000);
});
