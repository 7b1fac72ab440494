import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
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
      const page = await fetch(dashboard.url);
      expect(page.status).toBe(503);
      expect(await page.text()).toContain('npm run build:web');
      const put = await fetch(new URL('/api/kv/greeting', dashboard.url), {
        method: 'PUT',
        headers: { 'x-quorate-token': dashboard.token },
        body: JSON.stringify({ value: 'hi' }),
      });
      expect(put.status).toBe(200);
    } finally {
      await dashboard.close();
    }
  });
});

/** A raw request (fetch would not let a test set Host, Origin or Sec-Fetch-Site). */
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body = '',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('dashboard control API safety', () => {
  const webRoot = mkdtempSync(join(tmpdir(), 'quorate-web-'));
  writeFileSync(
    join(webRoot, 'index.html'),
    '<html><head><title>q</title></head><body></body></html>',
  );
  const calls: string[] = [];
  const logged: string[] = [];
  const start = () =>
    startDashboard({
      host: '127.0.0.1',
      port: 0,
      webRoot,
      log: (line) => logged.push(line),
      cluster: {
        endpoints: () => [
          { id: 1, clientUrl: 'http://127.0.0.1:1' },
          { id: 2, clientUrl: 'http://127.0.0.1:1' },
        ],
        stop: async (id) => void calls.push(`stop ${id}`),
        start: async (id) => void calls.push(`start ${id}`),
      },
    });
  afterEach(() => {
    calls.length = 0;
    logged.length = 0;
  });
  afterAll(() => rmSync(webRoot, { recursive: true, force: true }));

  it('refuses a cross-site text/plain POST /api/nodes/2/stop with 403, and logs it', async () => {
    const dashboard = await start();
    try {
      const stop = new URL('/api/nodes/2/stop', dashboard.url).href;
      const crossSite = await send(stop, 'POST', {
        'content-type': 'text/plain',
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
      });
      expect(crossSite.status).toBe(403);
      // Without Sec-Fetch-Site (older browsers) the Origin alone is refused, token or not.
      const foreign = await send(stop, 'POST', {
        'content-type': 'text/plain',
        origin: 'https://evil.example',
        'x-quorate-token': dashboard.token,
      });
      expect(foreign.status).toBe(403);
      // A name rebound to 127.0.0.1 is same-origin to the browser: the Host gives it away.
      const rebound = await send(stop, 'POST', {
        host: `evil.example:${new URL(dashboard.url).port}`,
        'x-quorate-token': dashboard.token,
      });
      expect(rebound.status).toBe(403);
      const noToken = await send(stop, 'POST', { origin: new URL(dashboard.url).origin });
      expect(noToken.status).toBe(403);
      expect(calls).toEqual([]);
      expect(logged.filter((l) => l.includes('refused'))).toHaveLength(4);
    } finally {
      await dashboard.close();
    }
  });

  it("runs and logs a stop or start from its own page, whose HTML carries the run's token", async () => {
    const dashboard = await start();
    try {
      const page = await (await fetch(dashboard.url)).text();
      const token = /<meta name="quorate-token" content="([0-9a-f]+)">/.exec(page)?.[1];
      expect(token).toBe(dashboard.token);
      const origin = new URL(dashboard.url).origin;
      for (const action of ['stop', 'start']) {
        const answer = await send(new URL(`/api/nodes/2/${action}`, dashboard.url).href, 'POST', {
          origin,
          'sec-fetch-site': 'same-origin',
          'x-quorate-token': token ?? '',
        });
        expect(answer.status).toBe(200);
      }
      expect(calls).toEqual(['stop 2', 'start 2']);
      expect(logged).toEqual([
        'dashboard: stop node 2',
        'dashboard: node 2 stopped',
        'dashboard: start node 2',
        'dashboard: node 2 started',
      ]);
    } finally {
      await dashboard.close();
    }
  });

  it('gives every run its own token', async () => {
    const [a, b] = [await start(), await start()];
    expect(a.token).not.toBe(b.token);
    await Promise.all([a.close(), b.close()]);
  });
});
