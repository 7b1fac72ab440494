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
import { Workload } from './workload.ts';

/** Membership changes through the API while clients write: add a learner, promote, remove. */
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster(3, [], 4);
}, 90_000);

afterAll(async () => {
  await t?.cleanup();
});

async function admin(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  expected = 200,
): Promise<unknown> {
  const res = await fetch(`${url}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  expect(res.status, `${method} ${path}: ${text}`).toBe(expected);
  return text === '' ? undefined : JSON.parse(text);
}

function roleOf(s: StatusResponse | undefined, id: NodeId): string | undefined {
  return s?.members.find((m) => m.id === id)?.role;
}

describe('membership', () => {
  it('adds a learner, promotes it and removes an old member under load, losing nothing', async () => {
    const c = t.cluster;
    const leader = await waitForLeader(c);
    const workload = new Workload({
      endpoints: c.nodes.map((n) => n.clientUrl),
      workers: 3,
      keys: 3,
      opsPerWorkerMax: 2000,
    });
    const fresh = c.addNode(4);
    const old = c.nodes.find((n) => n.id !== leader && n.id !== 4)?.id as NodeId;
    workload.start();
    try {
      await waitUntil('writes before the change', async () =>
        workload.okCount >= 20 ? true : undefined,
      );
      await c.start(4, ['--join']);
      // Through a follower: the change is forwarded to the leader.
      await admin(urlOf(c, old), 'POST', '/v1/members', {
        id: 4,
        peerAddress: fresh.peerAddress,
        clientUrl: fresh.clientUrl,
      });
      await waitUntil('node 4 to catch up as a learner', async () => {
        const [l, n4] = await Promise.all([statusOf(urlOf(c, leader)), statusOf(fresh.clientUrl)]);
        if (l === undefined || n4 === undefined || roleOf(n4, 4) !== 'learner') return undefined;
        return n4.appliedIndex >= l.commitIndex - 5 ? true : undefined;
      });
      // The leader promotes only a learner within appendEntriesMax of its last index, judged
      // at that moment; under this load the learner can fall behind again between our look
      // and the call, so a not-caught-up refusal is asked again, as an operator would.
      await waitUntil('node 4 to be promoted', async () => {
        const res = await fetch(`${urlOf(c, leader)}/v1/members/4/promote`, {
          method: 'POST',
          signal: AbortSignal.timeout(15_000),
        });
        const text = await res.text();
        if (res.status === 200) return true;
        expect(text, `promote refused for another reason (${res.status})`).toMatch(
          /learner-not-caught-up/,
        );
        return undefined;
      });
      await admin(urlOf(c, leader), 'DELETE', `/v1/members/${old}`);
      const before = workload.okCount;
      await waitUntil('writes after the change', async () =>
        workload.okCount >= before + 20 ? true : undefined,
      );
    } finally {
      await workload.stop();
    }
    const remaining = c.nodes.filter((n) => n.id !== old).map((n) => n.clientUrl);
    for (const url of remaining) {
      const s = await waitUntil(`the new configuration at ${url}`, async () => {
        const status = await statusOf(url);
        return roleOf(status, 4) === 'voter' && roleOf(status, old) === undefined
          ? status
          : undefined;
      });
      expect(s.members.map((m) => m.id).sort()).toEqual(
        [1, 2, 3, 4].filter((id) => id !== old).sort(),
      );
      expect(s.members.find((m) => m.id === 4)?.clientUrl).toBe(fresh.clientUrl);
    }
    // The removed node learns it from its peers and shuts down cleanly by itself.
    await waitUntil(`node ${old} to stop itself`, async () =>
      c.isRunning(old) ? undefined : true,
    );
    expect(await c.kill(old)).toBe(0);
    // Its id is retired: adding it back is refused, whatever addresses come with it.
    const refused = await admin(
      urlOf(c, leader),
      'POST',
      '/v1/members',
      { id: old, peerAddress: '127.0.0.1:1', clientUrl: 'http://127.0.0.1:2' },
      409,
    );
    expect(JSON.stringify(refused)).toContain('retired');
    await workload.finalReads(remaining);
    const result = workload.check();
    expect(result, JSON.stringify(result)).toMatchObject({ verdict: 'linearizable' });
  });
});
