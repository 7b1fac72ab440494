import { afterEach, describe, expect, it } from 'vitest';
import type { KvChange } from '../kv/machine.ts';
import { startNode, stopNodes, type TestNode } from '../server/testing/harness.ts';
import { QuorateClient } from './client.ts';
import { QuorateError, UnknownOutcomeError, UnreachableError } from './errors.ts';

const started: TestNode[] = [];
afterEach(async () => {
  await stopNodes(...started.splice(0));
});

async function node(id: number, hangMs?: number): Promise<TestNode> {
  const n = await startNode(hangMs === undefined ? { id } : { id, hangMs });
  started.push(n);
  return n;
}

/** A URL where nothing listens: a server that was started and stopped. */
async function deadUrl(): Promise<string> {
  const n = await startNode({ id: 99 });
  await stopNodes(n);
  return n.url;
}

const fast = { timeoutMs: 2000, retries: 4, backoffMs: 5, backoffMaxMs: 20 };

describe('QuorateClient', () => {
  it('performs every key-value operation with typed results', async () => {
    const n = await node(1);
    const client = new QuorateClient({ endpoints: [n.url], ...fast });
    expect(await client.put('a/b', '1')).toEqual({ revision: 1, version: 1 });
    expect((await client.get('a/b')).entry?.value).toBe('1');
    expect((await client.get('a/b', 'stale')).entry?.value).toBe('1');
    expect((await client.cas('a/b', '1', '2')).ok).toBe(true);
    expect((await client.cas('a/b', '1', '3')).ok).toBe(false);
    expect((await client.casVersion('a/b', 2, '3')).entry?.value).toBe('3');
    expect((await client.list('a/', { limit: 10 })).entries.map((e) => e.key)).toEqual(['a/b']);
    expect((await client.delete('a/b')).deleted).toBe(true);
    expect((await client.get('a/b')).entry).toBeNull();
    await client.addLearner(2, '127.0.0.1:7002', 'http://127.0.0.1:2380');
    await client.promote(2);
    expect((await client.members()).map((m) => [m.id, m.role])).toEqual([
      [1, 'voter'],
      [2, 'voter'],
    ]);
    await client.remove(2);
    expect((await client.status()).members).toHaveLength(1);
    // Every write carried this client's session and a fresh, increasing seq.
    const seqs = n.engine.writes.map((w) => [w.session, w.seq]);
    expect(seqs).toEqual([1, 2, 3, 4, 5].map((seq) => [client.session, seq]));
  });

  it('applies a write once when its answer is lost and it is retried (timeout)', async () => {
    const n = await node(1, 5_000);
    const client = new QuorateClient({ endpoints: [n.url], ...fast, timeoutMs: 300 });
    n.engine.injectAfterApply('hang');
    const result = await client.put('k', 'v');
    expect(result).toEqual({ revision: 1, version: 1 });
    // At least one retry, all of the same (session, seq): applied once.
    expect(n.engine.writes.length).toBeGreaterThanOrEqual(2);
    for (const w of n.engine.writes) expect(w).toEqual(n.engine.writes[0]);
    expect(n.engine.machine.currentRevision).toBe(1);
  });

  it('applies a write once when the cluster loses its answer (504) and it is retried', async () => {
    const n = await node(1);
    const client = new QuorateClient({ endpoints: [n.url], ...fast });
    await client.put('k', 'v0');
    n.engine.injectAfterApply('unavailable', 'unavailable');
    const result = await client.cas('k', 'v0', 'v1');
    expect(result.ok).toBe(true);
    const casWrites = n.engine.writes.slice(1);
    expect(casWrites.length).toBeGreaterThanOrEqual(3);
    for (const w of casWrites) expect(w).toEqual(casWrites[0]);
    expect((await client.get('k')).entry).toMatchObject({ value: 'v1', version: 2 });
  });

  it('reports an unknown outcome, not a failure, when every retry of a write is lost', async () => {
    const n = await node(1, 5_000);
    const client = new QuorateClient({ endpoints: [n.url], ...fast, timeoutMs: 150, retries: 2 });
    n.engine.injectAfterApply('hang', 'hang', 'hang');
    await expect(client.put('k', 'v')).rejects.toBeInstanceOf(UnknownOutcomeError);
    // The next write moves to a new seq and still works.
    n.engine.releaseHung();
    expect((await client.put('k', 'w')).version).toBe(2);
  });

  it('never retries a lost membership change (it has no exactly-once session)', async () => {
    const n = await node(1);
    const client = new QuorateClient({ endpoints: [n.url], ...fast });
    n.engine.setMode({ kind: 'unavailable' });
    await expect(client.addLearner(3, 'h:1', 'http://h:2')).rejects.toBeInstanceOf(
      UnknownOutcomeError,
    );
  });

  it('finds and remembers the leader through a forwarding follower', async () => {
    const leader = await node(1);
    const follower = await node(2);
    follower.engine.setMode({ kind: 'follower', leader: 1, leaderClientUrl: leader.url });
    const client = new QuorateClient({ endpoints: [follower.url], ...fast });
    await client.put('k', 'v');
    expect(client.target).toBe(leader.url);
    await client.put('k', 'w');
    expect(follower.engine.writes).toHaveLength(1);
    expect(leader.engine.writes).toHaveLength(2);
  });

  it('moves past dead endpoints and nodes without a leader', async () => {
    const dead = await deadUrl();
    const lost = await node(3);
    lost.engine.setMode({ kind: 'follower', leader: 0 });
    const live = await node(1);
    const client = new QuorateClient({ endpoints: [dead, lost.url, live.url], ...fast });
    expect((await client.put('k', 'v')).revision).toBe(1);
    expect(client.target).toBe(live.url);
  });

  it('fails definitely and clearly when no endpoint is reachable', async () => {
    const client = new QuorateClient({ endpoints: [await deadUrl()], ...fast, retries: 1 });
    await expect(client.put('k', 'v')).rejects.toBeInstanceOf(UnreachableError);
    await expect(client.get('k')).rejects.toBeInstanceOf(UnreachableError);
  });

  it('does not retry a bad request', async () => {
    const n = await node(1);
    const client = new QuorateClient({ endpoints: [n.url], ...fast });
    const err = await client.put('k', 'x'.repeat(2 * 1024 * 1024 + 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuorateError);
    expect((err as QuorateError).code).toBe('too-large');
    expect((err as QuorateError).status).toBe(413);
  });

  it('serialises concurrent writes of one session so none is reported stale', async () => {
    const n = await node(1);
    const client = new QuorateClient({ endpoints: [n.url], ...fast, pendingWritesMax: 50 });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.put(`k${i % 3}`, `${i}`)),
    );
    expect(results.map((r) => r.revision)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const tooMany = new QuorateClient({ endpoints: [n.url], ...fast, pendingWritesMax: 1 });
    const burst = [tooMany.put('a', '1'), tooMany.put('b', '2')];
    await expect(burst[1]).rejects.toMatchObject({ code: 'too-many-pending' });
    await burst[0];
  });

  it('watches changes under a prefix from a revision until aborted', async () => {
    const a = await node(1);
    const client = new QuorateClient({ endpoints: [a.url], ...fast });
    await client.put('w/1', 'one');
    await client.put('x', 'skip');
    const abort = new AbortController();
    const seen: KvChange[] = [];
    const watching = (async () => {
      for await (const change of client.watch('w/', { fromRevision: 0, signal: abort.signal })) {
        seen.push(change);
        if (seen.length === 2) abort.abort();
      }
    })();
    await waitFor(() => seen.length === 1);
    await client.put('w/2', 'two');
    await watching;
    expect(seen).toEqual([
      { revision: 1, key: 'w/1', value: 'one' },
      { revision: 3, key: 'w/2', value: 'two' },
    ]);
  });

  it('resumes a watch on another node after its node goes away, missing nothing', async () => {
    // Two servers over one engine: two nodes with the same applied state.
    const a = await node(1);
    const b = await startNode(a.engine);
    started.push(b);
    const client = new QuorateClient({ endpoints: [a.url, b.url], ...fast });
    const abort = new AbortController();
    const seen: KvChange[] = [];
    const watching = (async () => {
      for await (const change of client.watch('', { signal: abort.signal })) {
        seen.push(change);
        if (seen.length === 3) abort.abort();
      }
    })();
    await waitFor(() => a.engine.watcherCount === 1);
    await client.put('r', '1');
    await waitFor(() => seen.length === 1);
    await a.server.close();
    await client.put('r', '2'); // applied while no watch is connected
    await client.put('r', '3');
    await watching;
    expect(seen.map((c) => c.value)).toEqual(['1', '2', '3']);
    expect(seen.map((c) => c.revision)).toEqual([1, 2, 3]);
  });

  it('rejects a watch whose history is compacted', async () => {
    const n = await startNode({ id: 1, limits: { sessionsMax: 10, changesMax: 1, listMax: 10 } });
    started.push(n);
    const client = new QuorateClient({ endpoints: [n.url], ...fast });
    for (let i = 0; i < 4; i++) await client.put('k', `${i}`);
    const iterate = async () => {
      for await (const _ of client.watch('', { fromRevision: 0 })) break;
    };
    await expect(iterate()).rejects.toMatchObject({ code: 'compacted' });
  });

  it('validates its options', () => {
    expect(() => new QuorateClient({ endpoints: [] })).toThrow(RangeError);
    expect(() => new QuorateClient({ endpoints: ['ftp://x'] })).toThrow(RangeError);
    expect(() => new QuorateClient({ endpoints: ['http://x'], timeoutMs: 0 })).toThrow(RangeError);
    const a = new QuorateClient({ endpoints: ['http://x'] });
    const b = new QuorateClient({ endpoints: ['http://x'] });
    expect(a.session).not.toBe(b.session);
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}
