import { expect } from 'vitest';
import type { LocalCluster } from '../../src/cli/commands/up.ts';
import type { NodeId } from '../../src/kernel/ids.ts';
import { statusOf, urlOf, waitForLeader, waitUntil } from './harness.ts';
import { Workload } from './workload.ts';

/**
 * Scenarios every engine must pass with real processes; each protocol's test file runs them
 * against its own cluster, so Raft and Multi-Paxos are held to exactly the same standard.
 */

/** Waits until `id` has applied everything `leader` had committed when called. */
export async function caughtUp(c: LocalCluster, id: NodeId, leader: NodeId): Promise<void> {
  const target = (await statusOf(urlOf(c, leader)))?.commitIndex ?? 0;
  await waitUntil(`node ${id} to apply through ${target}`, async () => {
    const s = await statusOf(urlOf(c, id));
    return s !== undefined && s.appliedIndex >= target ? true : undefined;
  });
}

/**
 * kill -9 of the leader under 4 concurrent writers: a new leader takes over, writes go on,
 * the old leader restarts and catches up, no acknowledged write is lost and the recorded
 * history (with final reads through every node) is linearizable.
 */
export async function killLeaderUnderLoad(c: LocalCluster): Promise<void> {
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
    await caughtUp(c, leader, next);
  } finally {
    await workload.stop();
  }
  await workload.finalReads(c.nodes.map((n) => n.clientUrl));
  const result = workload.check();
  expect(result, JSON.stringify(result)).toMatchObject({ verdict: 'linearizable' });
  expect(workload.acknowledged.size).toBe(3);
}
