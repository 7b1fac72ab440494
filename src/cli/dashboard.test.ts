import { afterEach, describe, expect, it } from 'vitest';
import { startNode, stopNodes, type TestNode } from '../server/testing/harness.ts';
import { parseCounters, startDashboard } from './dashboard.ts';

describe('dashboard', () => {
  const nodes: TestNode[] = [];
  afterEach(async () => {
    await stopNodes(...nodes.splice(0));
  });

  it('counts key-value requests from /metrics, leaving status polls out', async () => {
    const node = await startNode({ id: 1 });
    nodes.push(node);
    for (const value of ['a', 'b']) {
      await fetch(`${node.url}/v1/kv/k`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ value }),
      });
    }
    await fetch(`${node.url}/v1/kv/k`);
    for (let i = 0; i < 3; i++) await fetch(`${node.url}/v1/status`);
    const counters = parseCounters(await (await fetch(`${node.url}/metrics`)).text());
    expect(counters.kvRequests).toBe(3);
    expect(counters.kvLatencyCount).toBe(3);
    expect(counters.kvLatencySum).toBeGreaterThan(0);
  });

  it('fans out to the nodes and reports an unreachable one with its error', async () => {
    const node = await startNode({ id: 1 });
    nodes.push(node);
    const dashboard = await startDashboard({
      host: '127.0.0.1',
      port: 0,
      webRoot: '/nonexistent',
      nodeTimeoutMs: 500,
      cluster: {
        endpoints: () => [
          { id: 1, clientUrl: node.url },
          { id: 2, clientUrl: 'http://127.0.0.1:1' },
        ],
        stop: async () => undefined,
        start: async () => undefined,
      },
    });
    try {
      const snap = await (await fetch(new URL('/api/cluster', dashboard.url))).json();
      expect(snap.hasCluster).toBe(true);
      expect(snap.nodes[0].status.role).toBe('leader');
      expect(snap.nodes[1].status).toBeNull();
      expect(snap.nodes[1].error).toBeTruthy();
      const put = await fetch(new URL('/api/kv/greeting', dashboard.url), {
        method: 'PUT',
        body: JSON.stringify({ value: 'hi' }),
      });
      expect(put.status).toBe(200);
      const page = await fetch(dashboard.url);
      expect(page.status).toBe(503);
      expect(await page.text()).toContain('npm run build:web');
    } finally {
      await dashboard.close();
    }
  });
});
