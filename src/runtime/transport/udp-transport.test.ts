import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { GossipMsg } from '../../gossip/index.ts';
import { msgBytes } from '../../gossip/index.ts';
import type { NodeId } from '../../kernel/ids.ts';
import {
  deriveDatagramKey,
  plainDatagram,
  ReplayWindow,
  SEAL_OVERHEAD_BYTES,
  sealDatagram,
} from './datagram-seal.ts';
import { gossipDatagramCodec } from './gossip-codec.ts';
import { eventually } from './transport.cases.ts';
import type { PeerAddress } from './transport.ts';
import { UdpTransport, type UdpTransportOptions } from './udp-transport.ts';

const secret = 'a cluster secret of enough bytes';
const started: UdpTransport<GossipMsg>[] = [];

async function node(id: NodeId, over: Partial<UdpTransportOptions<GossipMsg>> = {}) {
  const t = new UdpTransport<GossipMsg>({
    id,
    clusterName: 'test',
    secret,
    codec: gossipDatagramCodec,
    ...over,
  });
  const got: [NodeId, GossipMsg][] = [];
  t.onMessage((from, msg) => got.push([from, msg]));
  const address = await t.start();
  started.push(t);
  return { t, got, address };
}

/** Sends raw bytes to `to` from a throwaway socket. */
async function inject(to: PeerAddress, datagrams: Uint8Array[]): Promise<void> {
  const s = createSocket('udp4');
  for (const d of datagrams) {
    await new Promise<void>((resolve) => s.send(d, to.port, to.host, () => resolve()));
  }
  s.close();
}

const ping = (seq: number): GossipMsg => ({ type: 'ping', seq, target: 2, rumours: [] });

function sealed(counter: bigint, msg: GossipMsg, keyId = 0, cluster = 'test', key = secret) {
  return sealDatagram(
    deriveDatagramKey(key, keyId),
    cluster,
    1,
    counter,
    gossipDatagramCodec.encode(msg),
  );
}

afterEach(async () => {
  for (const t of started.splice(0)) await t.stop();
});

describe('UdpTransport (sealed datagrams on loopback)', () => {
  it('carries gossip messages both ways, sealed with 30 bytes of overhead', async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, b.address);
    b.t.addPeer(1, a.address);
    for (let i = 0; i < 50; i++) expect(a.t.send(2, ping(i))).toBe('queued');
    b.t.send(1, { type: 'nack', seq: 9 });
    await eventually(() => b.got.length === 50 && a.got.length === 1);
    expect(new Set(b.got.map(([, m]) => (m.type === 'ping' ? m.seq : -1))).size).toBe(50);
    expect(a.got).toEqual([[2, { type: 'nack', seq: 9 }]]);
    expect(a.t.peerStats(2)?.sentBytes).toBe(50 * (msgBytes(ping(0)) + SEAL_OVERHEAD_BYTES));
  });

  it('connectPeers: sends from a socket connected to each peer, and follows a peer that moves', async () => {
    const a = await node(1, { connectPeers: true });
    const b = await node(2);
    a.t.addPeer(2, b.address);
    // A raw socket sees where datagrams come from: the connected socket, not the shared one.
    const raw = createSocket('udp4');
    const from: number[] = [];
    raw.on('message', (_d, rinfo) => from.push(rinfo.port));
    await new Promise<void>((resolve) => raw.bind(0, '127.0.0.1', () => resolve()));
    try {
      for (let i = 0; i < 20; i++) a.t.send(2, ping(i));
      await eventually(() => b.got.length === 20);
      a.t.addPeer(2, { host: '127.0.0.1', port: raw.address().port });
      await eventually(() => {
        a.t.send(2, ping(99));
        return from.length > 0 && from.at(-1) !== a.address.port;
      });
      const before = b.got.length;
      for (let i = 0; i < 5; i++) a.t.send(2, ping(i));
      await eventually(() => from.length >= 6);
      expect(b.got.length).toBe(before);
    } finally {
      raw.close();
    }
  });

  it('immutableMessages: a broadcast is sealed once and each peer accepts it; a resend to the same peer is fresh', async () => {
    const a = await node(1, { immutableMessages: true });
    const b = await node(2);
    a.t.addPeer(2, b.address);
    // Two raw sockets as peers 4 and 5 see the bytes each is sent.
    const raws = [createSocket('udp4'), createSocket('udp4')];
    const seen: Buffer[][] = [[], []];
    try {
      for (const [k, r] of raws.entries()) {
        r.on('message', (d) => seen[k]!.push(d));
        await new Promise<void>((resolve) => r.bind(0, '127.0.0.1', () => resolve()));
        a.t.addPeer(4 + k, { host: '127.0.0.1', port: r.address().port });
      }
      const m = ping(5);
      for (const to of [2, 4, 5] as const) a.t.send(to, m);
      // The same object again to the same peer (as a token retransmission is): a new counter,
      // or the peer's replay window would drop it.
      a.t.send(2, m);
      await eventually(() => b.got.length === 2 && seen[0]!.length === 1 && seen[1]!.length === 1);
      expect(seen[0]![0]!.equals(seen[1]![0]!)).toBe(true);
      expect(b.got).toEqual([
        [1, m],
        [1, m],
      ]);
      expect(b.t.drops.replay).toBe(0);
    } finally {
      for (const r of raws) r.close();
    }
  });

  it("insecure-none: carries messages in the clear, and neither mode takes the other's datagrams", async () => {
    const a = await node(1, { crypto: 'insecure-none' });
    const b = await node(2, { crypto: 'insecure-none' });
    const s = await node(3);
    a.t.addPeer(2, b.address);
    a.t.addPeer(3, s.address);
    for (let i = 0; i < 5; i++) expect(a.t.send(2, ping(i))).toBe('queued');
    await eventually(() => b.got.length === 5);
    const plain = gossipDatagramCodec.encode(ping(7));
    // The payload is readable on the wire: that is what the mode's name warns of.
    expect(Buffer.from(plainDatagram(1, 1n, plain)).includes(Buffer.from(plain))).toBe(true);
    a.t.send(3, ping(8));
    await inject(b.address, [sealed(99n, ping(9))]);
    await eventually(() => s.t.drops.version === 1 && b.t.drops.version === 1);
    expect(s.got).toEqual([]);
    expect(b.got.map(([, m]) => (m.type === 'ping' ? m.seq : -1))).toEqual([0, 1, 2, 3, 4]);
    expect(
      () =>
        new UdpTransport<GossipMsg>({
          id: 1,
          clusterName: 'test',
          secret,
          codec: gossipDatagramCodec,
          crypto: 'none' as 'insecure-none',
        }),
    ).toThrow(/crypto must be one of aes-256-gcm, insecure-none, got 'none'/);
  });

  it('refuses a message over the packet budget with too-large, and sends nothing', async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, b.address);
    const big: GossipMsg = {
      type: 'events',
      events: [{ origin: 1, seq: 1, name: 'x', payload: 'p'.repeat(1_400) }],
    };
    expect(a.t.send(2, big)).toBe('too-large');
    const fits: GossipMsg = {
      type: 'events',
      events: [
        { origin: 1, seq: 1, name: 'x', payload: 'p'.repeat(1_400 - SEAL_OVERHEAD_BYTES - 17) },
      ],
    };
    expect(msgBytes(fits) + SEAL_OVERHEAD_BYTES).toBe(1_400);
    expect(a.t.send(2, fits)).toBe('queued');
    await eventually(() => b.got.length === 1);
    expect(a.t.peerStats(2)?.droppedMessages).toBe(1);
  });

  it('drops and counts a wrong key, a wrong cluster name, an unknown key id, truncation, garbage and oversize', async () => {
    const b = await node(2);
    const good = sealed(10n, ping(1));
    await inject(b.address, [
      sealed(11n, ping(2), 0, 'test', 'another secret, also long enough'),
      sealed(12n, ping(3), 0, 'other-cluster'),
      sealed(13n, ping(4), 7),
      good.subarray(0, 20),
      good.subarray(0, good.length - 1),
      Uint8Array.from({ length: 100 }, (_, i) => i),
      new Uint8Array(1_401),
      sealDatagram(deriveDatagramKey(secret, 0), 'test', 1, 14n, Uint8Array.of(99)),
      good,
    ]);
    await eventually(() => b.t.received === 1 && b.t.droppedTotal() === 8);
    expect(b.t.drops).toMatchObject({
      auth: 3,
      'unknown-key': 1,
      truncated: 1,
      version: 1,
      oversize: 1,
      malformed: 1,
    });
    expect(b.got).toEqual([[1, ping(1)]]);
  });

  it('drops replays and duplicates, accepts loss and reordering within the window', async () => {
    const b = await node(2, { replayWindow: 64 });
    const d = (c: bigint) => sealed(c, ping(Number(c)));
    // 100, lost 101, 103 before 102, 100 again (duplicate), 30 far behind the window, 105.
    await inject(b.address, [d(100n), d(103n), d(102n), d(100n), d(103n), d(30n), d(105n)]);
    await eventually(() => b.t.received + b.t.drops.replay === 7);
    expect(b.got.map(([, m]) => (m.type === 'ping' ? m.seq : -1))).toEqual([100, 103, 102, 105]);
    expect(b.t.drops.replay).toBe(3);
  });

  it('rotates keys: a node accepting the old and new key ids hears both', async () => {
    const b = await node(2, { keyId: 1, acceptKeyIds: [0] });
    const a0 = await node(1, { keyId: 0 });
    const a1 = await node(3, { keyId: 1 });
    a0.t.addPeer(2, b.address);
    a1.t.addPeer(2, b.address);
    a0.t.send(2, ping(1));
    a1.t.send(2, ping(2));
    await eventually(() => b.got.length === 2);
    expect(b.got.map(([from]) => from).sort()).toEqual([1, 3]);
  });
});

describe('ReplayWindow', () => {
  it('accepts each counter once and nothing older than the window', () => {
    const w = new ReplayWindow(8);
    expect([5n, 5n, 3n, 12n, 4n, 5n, 11n, 11n].map((c) => w.accept(c))).toEqual([
      true,
      false,
      true,
      true,
      false,
      false,
      true,
      false,
    ]);
  });
});
