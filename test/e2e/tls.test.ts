import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterSnapshot } from '../../src/cli/dashboard.ts';
import { startDashboard } from '../../src/cli/dashboard.ts';
import { QuorateClient } from '../../src/client/client.ts';
import { startTestCluster, type TestCluster, waitUntil } from './harness.ts';

/**
 * A local cluster with TLS, as `quorate up --tls` starts it: a private CA made for the
 * cluster, peers speaking mutual TLS, clients HTTPS, followers forwarding to the leader's
 * https URL, and the dashboard reading every node through the CA.
 */
let t: TestCluster;
let ca: string;

beforeAll(async () => {
  t = await startTestCluster(3, ['--log-level', 'warn'], 3, { tls: true });
  ca = await readFile(t.cluster.tls?.ca as string, 'utf8');
}, 60_000);

afterAll(async () => {
  await t?.cleanup();
});

const urls = () => t.cluster.nodes.map((n) => n.clientUrl);

describe('a 3-node cluster with TLS', () => {
  it('elects a leader over mutual TLS and serves put/get over HTTPS from any node', async () => {
    expect(urls().every((url) => url.startsWith('https://127.0.0.1:'))).toBe(true);
    const clients = urls().map(
      (url) => new QuorateClient({ endpoints: [url], ca, timeoutMs: 3000 }),
    );
    const leader = await waitUntil('a leader every node agrees on', async () => {
      const statuses = await Promise.all(
        urls().map((url, i) => clients[i]?.status(url).catch(() => undefined)),
      );
      const named = statuses[0]?.leader;
      if (named === undefined || named === 0) return undefined;
      return statuses.every((s) => s?.leader === named) ? named : undefined;
    });
    expect([1, 2, 3]).toContain(leader);
    for (const [i, client] of clients.entries()) {
      await client.put(`via-${i}`, `from ${i}`);
    }
    for (const client of clients) {
      for (const i of [0, 1, 2]) {
        expect(await client.get(`via-${i}`)).toMatchObject({ entry: { value: `from ${i}` } });
      }
    }
    const plain = urls()[0]?.replace(/^https:/, 'http:');
    const answered = await fetch(`${plain}/v1/status`, { signal: AbortSignal.timeout(2000) }).then(
      () => true,
      () => false,
    );
    expect(answered).toBe(false);
    // The system's trust store does not know the cluster's CA.
    const stranger = new QuorateClient({ endpoints: [urls()[0] as string], retries: 0 });
    await expect(stranger.get('via-0')).rejects.toThrow(/UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
  }, 60_000);

  it('refuses a peer link from a client without a certificate the CA signed', async () => {
    const peer = t.cluster.nodes[0]?.peerAddress as string;
    const [host, port] = peer.split(':') as [string, string];
    // The CA is trusted, so the client checks the node; the node asks for the client's
    // certificate and, getting none, ends the handshake.
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host, port: Number(port), ca, servername: host });
      socket.setTimeout(3000, () => {
        socket.destroy();
        resolve('timeout');
      });
      socket.once('secureConnect', () => {
        socket.once('close', () => resolve('closed after handshake'));
        socket.once('error', (err) => resolve(`error after handshake: ${err.message}`));
        socket.write('hello');
      });
      socket.once('error', (err) => resolve(`error: ${err.message}`));
    });
    // TLS 1.3 says "certificate required"; 1.2 a handshake failure.
    expect(outcome).toMatch(/certificate required|handshake failure/);
  });

  it('is watched by a dashboard that trusts the cluster CA', async () => {
    const dashboard = await startDashboard({
      host: '127.0.0.1',
      port: 0,
      webRoot: '/nonexistent',
      ca,
      cluster: {
        endpoints: () => t.cluster.endpoints(),
        stop: async () => undefined,
        start: async () => undefined,
      },
    });
    try {
      const snapshot = (await (
        await fetch(`${dashboard.url}api/cluster`)
      ).json()) as ClusterSnapshot;
      expect(snapshot.nodes.map((n) => [n.id, n.error])).toEqual([
        [1, null],
        [2, null],
        [3, null],
      ]);
      expect(snapshot.nodes.every((n) => n.status?.protocol === 'raft')).toBe(true);
    } finally {
      await dashboard.close();
    }
  });
});
