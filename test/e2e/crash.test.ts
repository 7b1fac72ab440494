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
} from './harness.ts';
import { caughtUp, killLeaderUnderLoad } from './scenarios.ts';

/** kill -9 under load, restarts, and catching up from the log or from a snapshot. */
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster(3, ['--snapshot-every', '40']);
}, 90_000);

afterAll(async () => {
  await t?.cleanup();
});

describe('crashes', () => {
  it('kill -9 of the leader under concurrent writes loses no acknowledged write', async () => {
    await killLeaderUnderLoad(t.cluster);
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
    await caughtUp(t.cluster, follower, leader);
    expect(await getVia(urlOf(c, follower), 'snap-9', 'stale')).toBe('v119');
    const log = await readFile(c.nodes.find((n) => n.id === follower)?.logFile as string, 'utf8');
    expect(log).toContain('installed a snapshot from the leader');
  });
});
