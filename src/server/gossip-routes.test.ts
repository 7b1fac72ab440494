import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GossipAgent } from './gossip-agent.ts';
import { createGossipServer, type GossipServer } from './gossip-routes.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorate-gossip-routes-'));
let agent: GossipAgent;
let server: GossipServer;
let url: string;

beforeAll(async () => {
  agent = await GossipAgent.start({
    dataDir: join(dir, 'a'),
    clusterName: 'test',
    secret: 'routes-test-secret-0123456789',
    bind: { host: '127.0.0.1', port: 0 },
    seeds: [],
    tags: { role: 'web' },
    logger: pino({ level: 'silent' }),
  });
  server = createGossipServer(agent, pino({ level: 'silent' }));
  url = await server.listen('127.0.0.1', 0);
});

afterAll(async () => {
  await server.close();
  await agent.stop();
  rmSync(dir, { recursive: true, force: true });
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('gossip agent HTTP API', () => {
  it('lists itself with its tags, address and incarnation, and records it on disk', async () => {
    const body = (await (await fetch(`${url}/v1/members`)).json()) as {
      id: number;
      members: { id: number; status: string; tags: Record<string, string>; address: string }[];
    };
    expect(body.members).toEqual([
      expect.objectContaining({
        id: agent.id,
        status: 'alive',
        incarnation: 1,
        tags: { role: 'web' },
        address: agent.address,
      }),
    ]);
    await agent.host.settled();
    const disk = JSON.parse(readFileSync(join(dir, 'a', 'gossip.json'), 'utf8'));
    expect(disk).toMatchObject({ id: agent.id, clusterName: 'test', durable: { incarnation: 1 } });
  });

  it('publishes an event and hands it to a reader from feed number 1', async () => {
    const r = await post('/v1/events', { name: 'deploy', payload: 'v1' });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ origin: agent.id, seq: 1 });
    const feed = (await (await fetch(`${url}/v1/events?from=1&waitMs=2000`)).json()) as {
      items: unknown[];
      next: number;
    };
    expect(feed.items).toEqual([
      expect.objectContaining({ n: 1, type: 'event', name: 'deploy', payload: 'v1' }),
    ]);
    expect(feed.next).toBe(2);
  });

  it('refuses an event over 1 KiB with 413 naming the limit, and stores nothing', async () => {
    const r = await post('/v1/events', { name: 'big', payload: 'x'.repeat(1_100) });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(
      /eventBytesMax is 1024 bytes, got 1103/,
    );
    const feed = (await (await fetch(`${url}/v1/events?from=1`)).json()) as { items: unknown[] };
    expect(feed.items).toHaveLength(1);
  });

  it('refuses state changes from another origin (403) or not in JSON (415), and bad queries (400)', async () => {
    expect((await post('/v1/leave', {}, { origin: 'https://evil.example' })).status).toBe(403);
    const form = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=x',
    });
    expect(form.status).toBe(415);
    expect((await fetch(`${url}/v1/events?from=abc`)).status).toBe(400);
    expect((await post('/v1/events', { payload: 'no name' })).status).toBe(400);
    expect((await post('/v1/join', { seeds: ['not an address'] })).status).toBe(400);
    // None of it changed the agent.
    expect(agent.core.currentMode).toBe('member');
  });

  it('exports Prometheus metrics with every message kind', async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('# TYPE quorate_gossip_probes_total counter');
    expect(text).toMatch(/quorate_gossip_sent_bytes_total\{kind="push-pull"\} \d+/);
    expect(text).toMatch(/quorate_gossip_datagrams_dropped_total\{reason="auth"\} 0/);
  });
});
