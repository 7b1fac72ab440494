import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/runtime/transport/tcp-transport.ts';
import { parsePeerAddress } from '../../src/server/raft-members.ts';
import {
  getVia,
  putVia,
  startTestCluster,
  type TestCluster,
  urlOf,
  waitForLeader,
  waitUntil,
} from './harness.ts';

/** A 3-node cluster of real processes: basic service, and what a hostile network sends it. */
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster(3);
}, 90_000);

afterAll(async () => {
  await t?.cleanup();
});

describe('a 3-node cluster', () => {
  it('elects a leader; writes through any node are readable through every node', async () => {
    const c = t.cluster;
    const leader = await waitForLeader(c);
    expect(c.nodes.map((n) => n.id)).toContain(leader);
    for (const writer of c.nodes) {
      const res = await putVia(writer.clientUrl, `via-${writer.id}`, `from ${writer.id}`);
      expect(res.status, await res.clone().text()).toBe(200);
    }
    for (const reader of c.nodes) {
      for (const writer of c.nodes) {
        expect(await getVia(reader.clientUrl, `via-${writer.id}`)).toBe(`from ${writer.id}`);
      }
    }
    // Stale reads are local: once applied everywhere, every node serves them itself.
    for (const reader of c.nodes) {
      await waitUntil(`node ${reader.id} to apply the writes`, async () =>
        (await getVia(reader.clientUrl, 'via-3', 'stale')) === 'from 3' ? true : undefined,
      );
    }
    // The leader's metrics count what it sent each peer.
    const leaderUrl = c.nodes.find((n) => n.id === leader)?.clientUrl as string;
    const metrics = await (await fetch(`${leaderUrl}/metrics`)).text();
    for (const peer of c.nodes.filter((n) => n.id !== leader)) {
      const line = new RegExp(`^quorate_peer_sent_bytes_total\\{peer="${peer.id}"\\} (\\d+)$`, 'm');
      expect(Number(line.exec(metrics)?.[1] ?? 0), metrics).toBeGreaterThan(0);
    }
  });

  it('rejects a peer connection that does not know the secret', async () => {
    const node1 = t.cluster.nodes[0];
    if (node1 === undefined) throw new Error('no node 1');
    const intruder = new TcpTransport<unknown>({
      id: 2,
      secret: 'not-the-cluster-secret-at-all',
      reconnectBaseMs: 1000,
      log: () => {},
    });
    await intruder.start();
    try {
      intruder.addPeer(1, parsePeerAddress(node1.peerAddress) as { host: string; port: number });
      intruder.send(1, { type: 'heartbeat', term: 1_000_000, commit: 0, round: 1 });
      await waitUntil('node 1 to log the failed handshake', async () =>
        (await readFile(node1.logFile, 'utf8')).includes('failed authentication')
          ? true
          : undefined,
      );
      expect(intruder.peerStats(1)?.connected).toBe(false);
    } finally {
      await intruder.stop();
    }
    // The intruder's huge term never reached Raft.
    const status = (await (await fetch(`${node1.clientUrl}/v1/status`)).json()) as { term: number };
    expect(status.term).toBeLessThan(1_000_000);
  });

  it('closes a peer connection that sends random bytes and keeps serving', async () => {
    const node = t.cluster.nodes[1];
    if (node === undefined) throw new Error('no node 2');
    const address = parsePeerAddress(node.peerAddress) as { host: string; port: number };
    const closed = await new Promise<boolean>((resolve) => {
      const socket = connect(address.port, address.host, () =>
        socket.write(randomBytes(64 * 1024)),
      );
      socket.on('error', () => {});
      socket.resume(); // a paused socket would never see the server's FIN
      socket.on('close', () => resolve(true));
      setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, 8000);
    });
    expect(closed).toBe(true);
    const res = await putVia(node.clientUrl, 'after-garbage', 'still here');
    expect(res.status).toBe(200);
    expect(await getVia(node.clientUrl, 'after-garbage')).toBe('still here');
  });

  it('answers malformed, oversized and unknown API requests with 4xx and a message', async () => {
    const url = urlOf(t.cluster, 1);
    const cases: { what: string; init: RequestInit; path: string; status: number }[] = [
      {
        what: 'invalid JSON',
        path: '/v1/kv/k',
        init: { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"value":' },
        status: 400,
      },
      {
        what: 'a value of the wrong type',
        path: '/v1/kv/k',
        init: {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: '{"value":5}',
        },
        status: 400,
      },
      {
        what: 'an oversized body',
        path: '/v1/kv/k',
        init: {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ value: 'x'.repeat(3 * 1024 * 1024) }),
        },
        status: 413,
      },
      { what: 'an unknown route', path: '/v2/nothing', init: { method: 'GET' }, status: 404 },
      {
        what: 'a write to a reserved key',
        path: `/v1/kv/${encodeURIComponent('\u0000quorate/members/9')}`,
        init: {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: '{"value":"x"}',
        },
        status: 400,
      },
    ];
    for (const c of cases) {
      const res = await fetch(`${url}${c.path}`, c.init);
      const body = (await res.json()) as { error?: { message?: string } };
      expect(res.status, c.what).toBe(c.status);
      expect(body.error?.message, c.what).toMatch(/\w/);
    }
  });
});
