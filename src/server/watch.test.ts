import { afterEach, describe, expect, it } from 'vitest';
import { parseSse, type SseEvent } from '../client/sse.ts';
import { request, startNode, stopNodes, type TestNode } from './testing/harness.ts';

const started: TestNode[] = [];
afterEach(async () => {
  await stopNodes(...started.splice(0));
});

/** Reads events from a watch stream until `count` have arrived, then disconnects. */
async function readEvents(url: string, count: number): Promise<SseEvent[]> {
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const events: SseEvent[] = [];
  if (res.body === null) throw new Error('no body');
  for await (const event of parseSse(res.body, 1 << 20)) {
    events.push(event);
    if (events.length === count) break;
  }
  abort.abort();
  return events;
}

describe('watch (server-sent events)', () => {
  it('replays changes after a revision, filtered by prefix, then streams new ones', async () => {
    const node = await startNode({ id: 1 });
    started.push(node);
    await request(`${node.url}/v1/kv/a%2F1`, 'PUT', { value: 'one' });
    await request(`${node.url}/v1/kv/b`, 'PUT', { value: 'other' });
    await request(`${node.url}/v1/kv/a%2F2`, 'PUT', { value: 'two' });
    const reading = readEvents(`${node.url}/v1/watch?prefix=a%2F&fromRevision=1`, 3);
    await waitFor(() => node.engine.watcherCount === 1);
    await request(`${node.url}/v1/kv/a%2F1`, 'DELETE');
    const events = await reading;
    expect(events.map((e) => [e.event, e.id, JSON.parse(e.data)])).toEqual([
      ['watching', undefined, { fromRevision: 1 }],
      ['change', '3', { revision: 3, key: 'a/2', value: 'two' }],
      ['change', '4', { revision: 4, key: 'a/1', value: null }],
    ]);
    await waitFor(() => node.engine.watcherCount === 0);
  });

  it('starts from the current revision by default and resumes from Last-Event-ID', async () => {
    const node = await startNode({ id: 1 });
    started.push(node);
    await request(`${node.url}/v1/kv/x`, 'PUT', { value: '1' });
    await request(`${node.url}/v1/kv/x`, 'PUT', { value: '2' });
    const fresh = await readEvents(`${node.url}/v1/watch`, 1);
    expect(JSON.parse(fresh[0]?.data ?? '')).toEqual({ fromRevision: 2 });
    const res = await fetch(`${node.url}/v1/watch`, { headers: { 'last-event-id': '1' } });
    const first = await nextEvents(res, 2);
    expect(first[1]).toMatchObject({ event: 'change', id: '2' });
  });

  it('reports compaction as an error event and ends the stream', async () => {
    const node = await startNode({
      id: 1,
      limits: { sessionsMax: 10, changesMax: 2, listMax: 10 },
    });
    started.push(node);
    for (let i = 0; i < 6; i++) await request(`${node.url}/v1/kv/k`, 'PUT', { value: `${i}` });
    const res = await fetch(`${node.url}/v1/watch?fromRevision=0`);
    const events = await nextEvents(res, 10);
    expect(events.map((e) => e.event)).toEqual(['watching', 'error']);
    expect(JSON.parse(events[1]?.data ?? '')).toMatchObject({ error: { code: 'compacted' } });
  });

  it('sends heartbeats and ends open streams when the server closes', async () => {
    const node = await startNode({ id: 1 }, { watchHeartbeatMs: 20 });
    const res = await fetch(`${node.url}/v1/watch`);
    const reader = res.body?.getReader();
    let text = '';
    while (!text.includes(': heartbeat')) {
      const chunk = await reader?.read();
      text += new TextDecoder().decode(chunk?.value);
    }
    await stopNodes(node);
    for (;;) {
      const chunk = await reader?.read();
      if (chunk === undefined || chunk.done) break;
    }
    expect(node.engine.watcherCount).toBe(0);
  });

  it('ends the stream of a reader that falls too far behind with slow-watcher', async () => {
    const node = await startNode({ id: 1 }, { watchBacklogMax: 2 });
    started.push(node);
    const res = await fetch(`${node.url}/v1/watch`);
    const big = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 200 && node.engine.watcherCount > 0; i++) {
      await request(`${node.url}/v1/kv/k`, 'PUT', { value: big });
    }
    expect(node.engine.watcherCount).toBe(0);
    const events = await nextEvents(res, 1000);
    const last = events.at(-1);
    expect(last?.event).toBe('error');
    expect(JSON.parse(last?.data ?? '')).toMatchObject({ error: { code: 'slow-watcher' } });
  });

  it('refuses watches beyond watchersMax with 503', async () => {
    const node = await startNode({ id: 1 }, { watchersMax: 1 });
    started.push(node);
    const abort = new AbortController();
    await fetch(`${node.url}/v1/watch`, { signal: abort.signal });
    const refused = await request(`${node.url}/v1/watch`, 'GET');
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: 'too-many-watchers' } });
    abort.abort();
  });
});

/** Reads up to `count` events, stopping early when the server ends the stream. */
async function nextEvents(res: Response, count: number): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  if (res.body === null) return events;
  for await (const event of parseSse(res.body, 1 << 20)) {
    events.push(event);
    if (events.length === count) break;
  }
  return events;
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}
