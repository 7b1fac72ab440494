import { afterEach, describe, expect, it } from 'vitest';
import { HEADER } from '../client/wire.ts';
import { request, startNode, stopNodes, type TestNode } from './testing/harness.ts';

const started: TestNode[] = [];
afterEach(async () => {
  await stopNodes(...started.splice(0));
});

/** A leader and a follower that points at it, both over real loopback HTTP. */
async function pair(): Promise<{ leader: TestNode; follower: TestNode }> {
  const leader = await startNode({ id: 1 });
  const follower = await startNode({ id: 2 });
  follower.engine.setMode({ kind: 'follower', leader: 1, leaderClientUrl: leader.url });
  started.push(leader, follower);
  return { leader, follower };
}

describe('followers forward to the leader', () => {
  it('relays writes with their session and seq, and reports where the leader is', async () => {
    const { leader, follower } = await pair();
    const headers = { [HEADER.session]: '9', [HEADER.seq]: '3' };
    const put = await request(`${follower.url}/v1/kv/a%2Fb`, 'PUT', { value: 'v' }, headers);
    expect(put).toMatchObject({ status: 200, body: { revision: 1, version: 1 } });
    expect(put.headers.get(HEADER.leader)).toBe(leader.url);
    expect(leader.engine.writes).toEqual([
      { session: 9, seq: 3, op: { f: 'put', key: 'a/b', value: 'v' } },
    ]);
    expect(follower.engine.machine.currentRevision).toBe(0);
  });

  it('relays linearizable reads, cas, deletes and membership changes; serves stale reads locally', async () => {
    const { leader, follower } = await pair();
    await request(`${leader.url}/v1/kv/k`, 'PUT', { value: 'at-leader' });
    const read = await request(`${follower.url}/v1/kv/k`, 'GET');
    expect(read.body).toMatchObject({ entry: { value: 'at-leader' } });
    const stale = await request(`${follower.url}/v1/kv/k?consistency=stale`, 'GET');
    expect(stale.body).toMatchObject({ entry: null });
    const cas = await request(`${follower.url}/v1/kv/k/cas`, 'POST', {
      expected: 'at-leader',
      value: 'w',
    });
    expect(cas.body).toMatchObject({ ok: true });
    expect((await request(`${follower.url}/v1/kv/k`, 'DELETE')).body).toMatchObject({
      deleted: true,
    });
    const member = { id: 3, peerAddress: '127.0.0.1:7003', clientUrl: 'http://127.0.0.1:1' };
    expect((await request(`${follower.url}/v1/members`, 'POST', member)).status).toBe(200);
    expect(leader.engine.status().members.map((m) => m.id)).toEqual([1, 3]);
  });

  it("relays the leader's error answers unchanged", async () => {
    const { follower } = await pair();
    const bad = await request(`${follower.url}/v1/kv/k/cas`, 'POST', { value: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'invalid-request' } });
  });

  it('stops after one hop when two nodes each name the other as leader', async () => {
    const a = await startNode({ id: 1 });
    const b = await startNode({ id: 2 });
    started.push(a, b);
    a.engine.setMode({ kind: 'follower', leader: 2, leaderClientUrl: b.url });
    b.engine.setMode({ kind: 'follower', leader: 1, leaderClientUrl: a.url });
    const answer = await request(`${a.url}/v1/kv/k`, 'PUT', { value: 'v' });
    expect(answer.status).toBe(421);
    expect(answer.body).toMatchObject({ error: { code: 'not-leader', leaderClientUrl: a.url } });
  });

  it('answers 503 no-leader with Retry-After when no leader is known', async () => {
    const lonely = await startNode({ id: 5 });
    started.push(lonely);
    lonely.engine.setMode({ kind: 'follower', leader: 0 });
    const answer = await request(`${lonely.url}/v1/kv/k`, 'PUT', { value: 'v' });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(answer.body).toMatchObject({ error: { code: 'no-leader' } });
  });

  it('reports a dead leader: 503 for reads, never a silent success', async () => {
    const dead = await startNode({ id: 1 });
    const deadUrl = dead.url;
    await stopNodes(dead);
    const follower = await startNode({ id: 2 });
    started.push(follower);
    follower.engine.setMode({ kind: 'follower', leader: 1, leaderClientUrl: deadUrl });
    const read = await request(`${follower.url}/v1/kv/k`, 'GET');
    expect(read.status).toBe(503);
    expect(read.body).toMatchObject({ error: { code: 'leader-unreachable' } });
    const write = await request(`${follower.url}/v1/kv/k`, 'PUT', { value: 'v' });
    expect(write.status).toBe(503);
  });
});
