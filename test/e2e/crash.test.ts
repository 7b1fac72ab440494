import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeId } from '../../src/kernel/ids.ts';
import {
  getVia,
  putVia,
  startTestCluster,
  statusOf,
  type TestCluster,
  urlOf,
  waitForLeader,
  waitUntil,
} from './harness.ts';
import { Workload } from './workload.ts';

/** kill -9 under load, restarts, and catching up from the log or from a snapshot. */
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster(3, ['--snapshot-every', '40']);
}, 90_000);

afterAll(async () => {
  await t?.cleanup();
});

async function caughtUp(id: NodeId, leader: NodeId): Promise<void> {
  const target = (await statusOf(urlOf(t.cluster, leader)))?.commitIndex ?? 0;
  await waitUntil(`node ${id} to apply through ${target}`, async () => {
    const s = await statusOf(urlOf(t.cluster, id));
    return s !== undefined && s.appliedIndex >= target ? true : undefined;
  });
}

describe('crashes', () => {
  it('kill -9 of the leader under concurrent writes loses no acknowledged write', async () => {
    const c = t.cluster;
    const leader = await waitForLeader(c);
    const workload = new Workload({
      endpoints: c.nodes.map((n) => n.clientUrl),
      workers: 4,
      keys: 3,
      opsPerWorkerMax: 2000,
    });
    workload.start();
    try {
      await waitUntil('writes before the crash', async () =>
        workload.okCount >= 40 ? true : undefined,
      );
      await c.kill(leader, 'SIGKILL');
      const next = await waitForLeader(c);
      expect(next).not.toBe(leader);
      const before = workload.okCount;
      await waitUntil('writes under the new leader', async () =>
        workload.okCount >= before + 40 ? true : undefined,
      );
      await c.start(leader);
      await caughtUp(leader, next);
    } finally {
      await workload.stop();
    }
    await workload.finalReads(c.nodes.map((n) => n.clientUrl));
    const result = workload.check();
    expect(result, JSON.stringify(result)).toMatchObject({ verdict: 'linearizable' });
    expect(workload.acknowledged.size).toBe(3);
  });

  it('a killed follower catches up by snapshot after the log moved past it', async () => {
    const c = t.cluster;
    const leader = await waitForLeader(c);
    const follower = c.nodes.find((n) => n.id !== leader)?.id as NodeId;
    await c.kill(follower, 'SIGKILL');
    for (let i = 0; i < 120; i++) {
      const res = await putVia(urlOf(c, leader), `snap-${i % 10}`, `v${i}`);
      expect(res.status).toBe(200);
    }
    const leaderStatus = await statusOf(urlOf(c, leader));
    expect(leaderStatus?.commitIndex).toBeGreaterThan(120);
    await c.start(follower);
    await caughtUp(follower, leader);
    expect(await getVia(urlOf(c, follower), 'snap-9', 'stale')).toBe('v119');
    const log = await readFile(c.nodes.find((n) => n.id === follower)?.logFile as string, 'utf8');
    expect(log).toContain('installed a snapshot from the leader');
  });
});
