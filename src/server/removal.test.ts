import { afterEach, describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import { type MemberAddress, RefusedError } from './engine.ts';
import type { RaftEngine } from './raft-engine.ts';
import {
  agreedLeader,
  cleanupSetups,
  type Engine,
  followerOf,
  patientRaft,
  type Setup,
  scriptedPeer,
  setup,
  sleep,
  startEngine,
  waitFor,
} from './testing/engines.ts';

/**
 * A member removed from a Raft cluster learns it and stops (as etcd's does), and its id is
 * retired. Real engines over TCP; `told` records who said so to whom.
 */

afterEach(cleanupSetups);

/** `patient` never campaigns, and so never asks anyone anything on its own. */
async function raftCluster(
  n: number,
  patient?: NodeId,
): Promise<{ s: Setup; told: Map<NodeId, NodeId>; leader: RaftEngine }> {
  const s = await setup(n);
  const told = new Map<NodeId, NodeId>();
  for (const m of s.members) await startRaft(s, m.id, told, m.id === patient);
  const leader = (await waitFor('a leader every node names', () => agreedLeader(s))) as RaftEngine;
  return { s, told, leader };
}

function startRaft(
  s: Setup,
  id: NodeId,
  told: Map<NodeId, NodeId>,
  patient = false,
): Promise<Engine> {
  return startEngine(s, 'raft', id, {
    onRemoved: ({ toldBy }) => told.set(id, toldBy),
    ...(patient ? { raft: patientRaft } : {}),
  });
}

const put = (value: string) => ({ session: 0, seq: 0, op: { f: 'put', key: 'k', value } }) as const;

describe('raft: a removed member', () => {
  it('is told by the leader once its removal commits, and its id cannot come back', async () => {
    // Node 3 never campaigns: only the leader's word can tell it (as for a learner).
    const { s, told, leader } = await raftCluster(3, 3);
    await leader.write(put('before'));
    const removed = s.engines.get(3) as Engine;
    await leader.remove(removed.id);
    expect(leader.status().members.map((m) => m.id)).not.toContain(removed.id);
    await waitFor('the removed node to be told', () => told.get(removed.id));
    expect(told.get(removed.id)).toBe(leader.id);
    expect([...told.keys()]).toEqual([removed.id]);
    // The two left commit on their own.
    expect(await leader.write(put('after'))).toMatchObject({ f: 'put' });
    const comeback = leader.addLearner({
      id: removed.id,
      peerAddress: '127.0.0.1:1',
      clientUrl: 'http://127.0.0.1:2',
    });
    await expect(comeback).rejects.toBeInstanceOf(RefusedError);
    await expect(comeback).rejects.toMatchObject({ refusal: { type: 'conflict' } });
    expect(leader.status().members.map((m) => m.id)).not.toContain(removed.id);
  });

  it('is told by any peer it sends to, when it was down as it was removed', async () => {
    const { s, told, leader } = await raftCluster(3);
    const removed = followerOf(s, leader);
    const other = [...s.engines.values()].find((e) => e !== leader && e !== removed) as Engine;
    await removed.stop();
    s.engines.delete(removed.id);
    await leader.remove(removed.id);
    await waitFor('the other follower to commit the removal', () => {
      const status = other.status();
      const member = status.members.some((m) => m.id === removed.id);
      return !member && status.commitIndex >= leader.status().commitIndex ? true : undefined;
    });
    // A stand-in with the removed node's id: a peer answers whatever it sends, and drops it.
    const ghost = await scriptedPeer(s, removed.id);
    const call = { type: 'fwdCall', id: 1, kind: 'write', session: 0, seq: 0, timeoutMs: 2000 };
    ghost.transport.send(other.id, { ...call, op: { f: 'put', key: 'k', value: 'ghost' } });
    // (The leader's own notice, sent while the node was down, may come too.)
    const fromOther = () =>
      ghost.received.filter((r) => r.msg.type === 'removed' && r.from === other.id);
    await waitFor('a notice from the other follower', () =>
      fromOther().length > 0 ? true : undefined,
    );
    expect(ghost.count('fwdReply')).toBe(0);
    // Asked again at once, the peer stays quiet: a notice a second at most.
    const before = fromOther().length;
    ghost.transport.send(other.id, { ...call, id: 2, op: { f: 'put', key: 'k', value: 'ghost' } });
    await sleep(200);
    expect(fromOther()).toHaveLength(before);
    expect(await leader.read({ f: 'get', key: 'k' }, 'linearizable')).toMatchObject({
      entry: null,
    });
    await ghost.transport.stop();
    s.peers.splice(s.peers.indexOf(ghost.transport), 1);
    // The real node, restarted on its old data, still thinks it is a voter: it campaigns and
    // hears it was removed.
    await startRaft(s, removed.id, told);
    await waitFor('the restarted node to be told', () => told.get(removed.id), 8000);
    expect([leader.id, other.id]).toContain(told.get(removed.id));
  });

  it('is the leader itself: it finds out from its own log and the others go on', async () => {
    const { s, told, leader } = await raftCluster(3);
    await leader.write(put('before'));
    await leader.remove(leader.id);
    await waitFor('the old leader to find out', () => told.get(leader.id));
    expect(told.get(leader.id)).toBe(leader.id);
    await leader.stop();
    s.engines.delete(leader.id);
    const next = await waitFor('a new leader', () => agreedLeader(s));
    expect(next.id).not.toBe(leader.id);
    expect(await next.write(put('after'))).toMatchObject({ f: 'put' });
    expect(told.size).toBe(1);
    // Restarted on its data, it knows at once (it would never campaign, being no voter).
    told.clear();
    const again = await startRaft(s, leader.id, told);
    expect(told.get(leader.id)).toBe(leader.id);
    await again.stop();
    s.engines.delete(leader.id);
  });

  it.each([
    ['after it has its own addition in its log', true],
    ['when it stopped before its log held its own addition', false],
  ])(
    'is told when it restarts as a learner (removed %s), though learners never campaign',
    async (_, caughtUp) => {
      const s = await setup(4);
      const told = new Map<NodeId, NodeId>();
      const voters = s.members.slice(0, 3);
      const onRemoved = (id: NodeId) => (d: { toldBy: NodeId }) => told.set(id, d.toldBy);
      for (const m of voters) {
        await startEngine(s, 'raft', m.id, { members: voters, onRemoved: onRemoved(m.id) });
      }
      let leader = (await waitFor('a leader', () => agreedLeader(s))) as RaftEngine;
      const learner = { join: true, onRemoved: onRemoved(4) };
      const four = await startEngine(s, 'raft', 4, learner);
      if (!caughtUp) await four.stop(); // down before the leader ever reaches it
      await leader.addLearner(s.members[3] as MemberAddress);
      if (caughtUp) {
        await waitFor(
          'the learner to hold its own addition',
          () => four.status().members.some((m) => m.id === 4 && m.role === 'learner') || undefined,
        );
        await four.stop();
      }
      s.engines.delete(4);
      await leader.remove(4);
      // The leader's own notice waits in its send queue for the node to come back: restart
      // the leader so that it is lost, and only the learner's probes can bring the news.
      await leader.stop();
      s.engines.delete(leader.id);
      await startEngine(s, 'raft', leader.id, { members: voters, onRemoved: onRemoved(leader.id) });
      leader = (await waitFor('a leader again', () => agreedLeader(s))) as RaftEngine;
      await startEngine(s, 'raft', 4, learner);
      await waitFor('the restarted learner to be told', () => told.get(4), 10_000);
      expect(voters.map((m) => m.id)).toContain(told.get(4));
      expect([...told.keys()]).toEqual([4]);
    },
  );

  it('is refused for a node that is not a member, and retires nothing', async () => {
    const { told, leader } = await raftCluster(3);
    await expect(leader.remove(9)).rejects.toMatchObject({ refusal: { type: 'conflict' } });
    // Id 9 is still free to join.
    await leader.addLearner({ id: 9, peerAddress: '127.0.0.1:1', clientUrl: 'http://127.0.0.1:2' });
    expect(leader.status().members).toContainEqual(
      expect.objectContaining({ id: 9, role: 'learner' }),
    );
    // A retried removal of a member already removed succeeds again.
    await leader.remove(9);
    await leader.remove(9);
    expect(told.size).toBe(0);
  });
});
