import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts } from '../../test/e2e/ports.ts';
import type { NodeId } from '../kernel/ids.ts';
import { type MemberAddress, RefusedError } from './engine.ts';
import { RaftEngine, type RaftEngineOptions } from './raft-engine.ts';
import { MEMBER_PREFIX } from './raft-members.ts';

const SECRET = 'engine-test-secret-0123456789';
const fastRaft = { electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300, heartbeatIntervalMs: 30 };

interface Cluster {
  readonly dir: string;
  readonly members: MemberAddress[];
  readonly engines: Map<NodeId, RaftEngine>;
}

const clusters: Cluster[] = [];

afterEach(async () => {
  for (const c of clusters.splice(0)) {
    for (const e of c.engines.values()) await e.stop();
    await rm(c.dir, { recursive: true, force: true });
  }
});

async function cluster(n: number, extra: Partial<RaftEngineOptions> = {}): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'quorate-engine-'));
  const ports = await freePorts(n);
  const members = ports.map((port, i) => ({
    id: i + 1,
    peerAddress: `127.0.0.1:${port}`,
    clientUrl: `http://127.0.0.1:${10_000 + i + 1}`,
  }));
  const c: Cluster = { dir, members, engines: new Map() };
  clusters.push(c);
  for (const m of members) await startEngine(c, m.id, extra);
  return c;
}

async function startEngine(
  c: Cluster,
  id: NodeId,
  extra: Partial<RaftEngineOptions> = {},
): Promise<RaftEngine> {
  const engine = await RaftEngine.open({
    id,
    dataDir: join(c.dir, `n${id}`),
    members: c.members,
    secret: SECRET,
    raft: fastRaft,
    ...extra,
  });
  await engine.start();
  c.engines.set(id, engine);
  return engine;
}

function leaderOf(c: Cluster): RaftEngine | undefined {
  for (const e of c.engines.values()) if (e.status().role === 'leader') return e;
  return undefined;
}

describe('RaftEngine', () => {
  it('elects a leader, replicates writes and serves linearizable reads on the leader', async () => {
    const c = await cluster(3);
    const leader = await waitFor('a leader', () => leaderOf(c));
    const put = await leader.write({ session: 7, seq: 1, op: { f: 'put', key: 'a', value: '1' } });
    expect(put).toMatchObject({ f: 'put', version: 1 });
    const got = await leader.read({ f: 'get', key: 'a' }, 'linearizable');
    expect(got).toMatchObject({ f: 'get', entry: { value: '1' } });
    for (const e of c.engines.values()) {
      await waitFor(`node ${e.id} to apply`, () =>
        e.status().appliedIndex >= leader.status().commitIndex ? true : undefined,
      );
      const stale = await e.read({ f: 'get', key: 'a' }, 'stale');
      expect(stale).toMatchObject({ entry: { value: '1' } });
    }
    // A follower hands the write to the leader over the peer transport (peer-forward.test.ts).
    const follower = [...c.engines.values()].find((e) => e !== leader) as RaftEngine;
    const forwarded = follower.write({
      session: 0,
      seq: 0,
      op: { f: 'put', key: 'b', value: '2' },
    });
    await expect(forwarded).resolves.toMatchObject({ f: 'put', version: 1 });
    expect(follower.leaderHint()).toBe(c.members.find((m) => m.id === leader.id)?.clientUrl);
    const progress = leader.status().progress ?? [];
    expect(progress.map((p) => p.id).sort()).toEqual(
      [...c.engines.keys()].filter((id) => id !== leader.id).sort(),
    );
  });

  it('refuses client writes to the reserved member records and hides them from lists', async () => {
    const c = await cluster(1);
    const leader = await waitFor('a leader', () => leaderOf(c));
    const write = leader.write({
      session: 0,
      seq: 0,
      op: { f: 'put', key: `${MEMBER_PREFIX}9`, value: 'x' },
    });
    await expect(write).rejects.toBeInstanceOf(RefusedError);
    await expect(write).rejects.toMatchObject({ refusal: { type: 'invalid' } });
    await leader.addLearner({ id: 9, peerAddress: '127.0.0.1:1', clientUrl: 'http://127.0.0.1:2' });
    const list = await leader.read({ f: 'list', prefix: '', limit: 100 }, 'linearizable');
    expect(list).toMatchObject({ f: 'list', entries: [] });
    const members = leader.status().members;
    expect(members).toContainEqual({
      id: 9,
      role: 'learner',
      peerAddress: '127.0.0.1:1',
      clientUrl: 'http://127.0.0.1:2',
    });
  });

  it('restarts from its WAL, snapshots and hard state with every acknowledged write', async () => {
    const c = await cluster(1, { replica: { snapshotEveryEntries: 20 } });
    let leader = await waitFor('a leader', () => leaderOf(c));
    for (let i = 1; i <= 50; i++) {
      await leader.write({ session: 1, seq: i, op: { f: 'put', key: `k${i % 7}`, value: `${i}` } });
    }
    const before = leader.status();
    await leader.stop();
    c.engines.delete(1);
    leader = await startEngine(c, 1, { replica: { snapshotEveryEntries: 20 } });
    await waitFor('leadership again', () => (leader.status().role === 'leader' ? true : undefined));
    expect(leader.status().term).toBeGreaterThan(before.term);
    const got = await leader.read({ f: 'get', key: 'k1' }, 'linearizable');
    expect(got).toMatchObject({ entry: { value: '50' } });
    expect(leader.status().revision).toBe(before.revision);
    // The session survived too: a retry of the last write answers its first result.
    const again = await leader.write({
      session: 1,
      seq: 50,
      op: { f: 'put', key: 'k1', value: '50' },
    });
    expect(again).toMatchObject({ f: 'put', revision: before.revision });
  });
});

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 8000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
