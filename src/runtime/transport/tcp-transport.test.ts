import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeId } from '../../kernel/ids.ts';
import { makeCertificates } from '../certificates.ts';
import { msgpackCodec } from './codec.ts';
import { encodeFrame, FrameDecoder } from './frame.ts';
import {
  clientProof,
  decodeChallenge,
  decodeHello,
  encodeChallenge,
  encodeHello,
  encodeWelcome,
  newNonce,
} from './handshake.ts';
import type { TcpTransportOptions } from './tcp-transport.ts';
import { TcpTransport } from './tcp-transport.ts';
import type { TestMsg } from './transport.cases.ts';
import { eventually } from './transport.cases.ts';
import type { PeerAddress } from './transport.ts';

const SECRET = 'correct horse battery staple';
const codec = msgpackCodec<TestMsg>();

const running: TcpTransport<TestMsg>[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const t of running.splice(0)) await t.stop();
});

async function node(id: NodeId, extra: Partial<TcpTransportOptions<TestMsg>> = {}) {
  const warnings: string[] = [];
  const t = new TcpTransport<TestMsg>({
    id,
    secret: SECRET,
    reconnectBaseMs: 10,
    reconnectMaxMs: 50,
    log: (level, m) => level === 'warn' && warnings.push(m),
    ...extra,
  });
  const got: TestMsg[] = [];
  t.onMessage((_from, msg) => got.push(msg));
  const address = await t.start();
  running.push(t);
  return { t, got, address, warnings };
}

/** A raw socket plus its decoded incoming frames and whether the server closed it. */
function rawClient(address: PeerAddress) {
  const socket = connect(address.port, address.host);
  sockets.push(socket);
  const frames: Uint8Array[] = [];
  const state = { closed: false, frames, socket };
  const decoder = new FrameDecoder(1 << 20);
  socket.on('data', (d: Buffer) => {
    const r = decoder.push(d);
    if (r.ok) frames.push(...r.frames);
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    state.closed = true;
  });
  return state;
}

/** Runs the client side of the handshake on a raw socket, with `secret`. */
async function authenticateRaw(
  address: PeerAddress,
  clientId: NodeId,
  targetId: NodeId,
  secret: string,
) {
  const c = rawClient(address);
  await eventually(() => c.frames.length === 1);
  const challenge = decodeChallenge(c.frames[0]!)!;
  const clientNonce = newNonce();
  const proof = clientProof(new TextEncoder().encode(secret), challenge, clientId, clientNonce);
  c.socket.write(encodeFrame(encodeHello({ clientId, targetId, clientNonce, proof })));
  return c;
}

/** Peer 1 keeps sending to peer 2; resolves once `count` more messages arrived. */
async function stillExchanging(
  a: Awaited<ReturnType<typeof node>>,
  b: Awaited<ReturnType<typeof node>>,
  count = 20,
) {
  const before = b.got.length;
  for (let n = 0; n < count; n++) a.t.send(2, { n });
  await eventually(() => b.got.length >= before + count);
}

describe('TcpTransport accounting', () => {
  it('tells onBytesSent every write, adding up to the bytes its stats report', async () => {
    const told: [NodeId, number][] = [];
    const a = await node(1, { onBytesSent: (peer, bytes) => told.push([peer, bytes]) });
    const b = await node(2);
    a.t.addPeer(2, b.address);
    for (let n = 0; n < 50; n++) a.t.send(2, { n, text: 'y'.repeat(64) });
    await eventually(() => b.got.length === 50);
    const total = told.reduce((sum, [, bytes]) => sum + bytes, 0);
    expect(told.every(([peer]) => peer === 2)).toBe(true);
    expect(total).toBe(a.t.peerStats(2)?.sentBytes);
    expect(total).toBeGreaterThan(50 * 64);
  });
});

describe('TcpTransport flushing', () => {
  it('writes a turn of sends in one write at the end of the turn, or at once on flush', async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, b.address);
    await eventually(() => a.t.peerStats(2)?.connected === true);
    const writes = () => a.t.peerStats(2)?.writes ?? 0;
    const start = writes();
    a.t.send(2, { n: 1 });
    a.t.send(2, { n: 2 });
    await Promise.resolve(); // promise jobs run; the turn is not over
    expect(writes()).toBe(start);
    await new Promise((r) => setImmediate(r));
    expect(writes()).toBe(start + 1);
    a.t.send(2, { n: 3 });
    a.t.flush();
    expect(writes()).toBe(start + 2);
    await eventually(() => b.got.length === 3);
    expect(b.got.map((m) => m.n)).toEqual([1, 2, 3]);
  });
});

describe('TcpTransport link changes', () => {
  it('reports a link up once it is authenticated and down once it breaks, each change once', async () => {
    const a = await node(1);
    const b = await node(2);
    const seen: [NodeId, boolean][] = [];
    a.t.onLinkChange((peer, up) => seen.push([peer, up]));
    a.t.addPeer(2, b.address);
    await eventually(() => seen.length === 1);
    expect(seen).toEqual([[2, true]]);
    await b.t.stop();
    running.splice(running.indexOf(b.t), 1);
    await eventually(() => seen.length === 2);
    // Redials keep failing while it is down: no further reports.
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual([
      [2, true],
      [2, false],
    ]);
  });
});

describe('TcpTransport redials', () => {
  it('redials a peer at once when it dials in, instead of waiting out the backoff', async () => {
    const slow = { reconnectBaseMs: 4000, reconnectMaxMs: 4000 };
    const a = await node(1, slow);
    const b = await node(2);
    const seen: [NodeId, boolean][] = [];
    a.t.onLinkChange((peer, up) => seen.push([peer, up]));
    a.t.addPeer(2, b.address);
    await eventually(() => seen.length === 1);
    await b.t.stop();
    running.splice(running.indexOf(b.t), 1);
    await eventually(() => seen.length === 2); // down: a now waits 2-4 s before redialing
    const back = await node(2, { listen: { host: b.address.host, port: b.address.port } });
    back.t.addPeer(1, a.address);
    const since = Date.now();
    await eventually(() => seen.length === 3, 1500);
    expect(seen[2]).toEqual([2, true]);
    expect(Date.now() - since).toBeLessThan(1500);
  });
});

describe('TcpTransport security', () => {
  it('rejects a node with the wrong secret: it neither joins nor injects a message', async () => {
    const b = await node(2);
    const intruder = await node(1, { secret: 'not the cluster secret at all' });
    intruder.t.addPeer(2, b.address);
    intruder.t.send(2, { n: 666 });
    await eventually(() => b.t.rejectedConnections >= 2);
    expect(b.got).toEqual([]);
    expect(intruder.t.peerStats(2)?.connected).toBe(false);
    expect(b.warnings.some((w) => /failed authentication/.test(w))).toBe(true);
  });

  it('ignores frames from a raw client whose proof is wrong, and closes it', async () => {
    const b = await node(2);
    const c = await authenticateRaw(b.address, 1, 2, 'a guessed secret, sixteen+ bytes');
    c.socket.write(encodeFrame(codec.encode({ n: 666 })));
    await eventually(() => c.closed);
    expect(c.frames.length).toBe(1); // the challenge, never a welcome
    expect(b.got).toEqual([]);
  });

  it('closes a connection sending random bytes while a legitimate peer keeps exchanging', async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, b.address);
    await stillExchanging(a, b);
    const noise = Array.from({ length: 5 }, () => rawClient(b.address));
    for (const c of noise) c.socket.write(randomBytes(4096));
    await eventually(() => noise.every((c) => c.closed));
    await stillExchanging(a, b);
    expect(b.t.rejectedConnections).toBe(5);
  });

  it('closes an authenticated connection that sends an oversized frame or an unknown version', async () => {
    const a = await node(1);
    const b = await node(2, { frameBytesMax: 1024 });
    a.t.addPeer(2, b.address);
    const big = await authenticateRaw(b.address, 3, 2, SECRET);
    await eventually(() => big.frames.length === 2); // challenge, welcome
    const header = Buffer.from([1, 0, 0, 0x10, 0]); // version 1, 4096 bytes
    big.socket.write(header);
    await eventually(() => big.closed);
    const badVersion = await authenticateRaw(b.address, 3, 2, SECRET);
    await eventually(() => badVersion.frames.length === 2);
    badVersion.socket.write(Buffer.from([9, 0, 0, 0, 1, 0]));
    await eventually(() => badVersion.closed);
    await stillExchanging(a, b);
  });

  it('delivers from an authenticated raw client, then closes it on an undecodable message', async () => {
    const b = await node(2);
    const c = await authenticateRaw(b.address, 3, 2, SECRET);
    await eventually(() => c.frames.length === 2);
    c.socket.write(encodeFrame(codec.encode({ n: 42 })));
    await eventually(() => b.got.length === 1);
    c.socket.write(encodeFrame(Uint8Array.of(0xc1))); // 0xc1 is never valid MessagePack
    await eventually(() => c.closed);
    expect(b.got).toEqual([{ n: 42 }]);
  });

  it('closes a connection that does not finish the handshake in time', async () => {
    const b = await node(2, { handshakeTimeoutMs: 100 });
    const silent = rawClient(b.address);
    await eventually(() => silent.closed);
    expect(b.warnings.some((w) => /handshake timeout/.test(w))).toBe(true);
  });

  it('does not send to a server that cannot prove the secret (mutual authentication)', async () => {
    const received: Uint8Array[] = [];
    const impostor = createServer((s) => {
      sockets.push(s);
      const decoder = new FrameDecoder(1 << 20);
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        const r = decoder.push(d);
        if (!r.ok) return;
        for (const f of r.frames) {
          if (decodeHello(f) !== undefined)
            s.write(encodeFrame(encodeWelcome(new Uint8Array(randomBytes(32)))));
          else received.push(f);
        }
      });
      s.write(encodeFrame(encodeChallenge({ serverId: 2, serverNonce: newNonce() })));
    });
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', () => r()));
    const port = (impostor.address() as { port: number }).port;
    const a = await node(1);
    a.t.addPeer(2, { host: '127.0.0.1', port });
    a.t.send(2, { n: 1 });
    await eventually(() => a.warnings.some((w) => /failed to prove/.test(w)));
    expect(received).toEqual([]);
    expect(a.t.peerStats(2)).toMatchObject({ connected: false, queuedMessages: 1 });
    await a.t.stop();
    await new Promise<void>((r) => impostor.close(() => r()));
  });

  it('refuses settings that break its bounds', () => {
    expect(() => new TcpTransport({ id: 1, secret: 'short' })).toThrow(/16 bytes/);
    expect(
      () => new TcpTransport({ id: 1, secret: SECRET, queueBytesMax: 10, frameBytesMax: 100 }),
    ).toThrow(/queueBytesMax/);
  });
});

describe('TcpTransport over TLS', () => {
  it('exchanges messages over mutual TLS and closes a plaintext connection', async () => {
    const tls = await makeCertificates('127.0.0.1');
    const a = await node(1, { tls });
    const b = await node(2, { tls });
    a.t.addPeer(2, b.address);
    await stillExchanging(a, b, 50);
    const plain = rawClient(b.address);
    plain.socket.write(randomBytes(512));
    await eventually(() => plain.closed);
    await stillExchanging(a, b, 10);
  });
});

describe('TcpTransport dialling by address and answering back', () => {
  it('learns a seed id from its challenge and gets the answer on the same connection', async () => {
    const a = await node(1);
    const b = await node(2);
    const fromB: NodeId[] = [];
    b.t.onMessage((from, msg) => {
      fromB.push(from);
      // No address for 1 was ever added: only the connection 1 dialled can carry this.
      expect(b.t.sendBack(from, { n: msg.n + 100 })).toBe('queued');
    });
    expect(await a.t.dialAddress(b.address, 2_000)).toBe(2);
    expect(a.t.send(2, { n: 7 })).toBe('queued');
    await eventually(() => a.got.length === 1);
    expect(a.got).toEqual([{ n: 107 }]);
    expect(fromB).toEqual([1]);
    // b never dialled a: one connection carried the exchange both ways.
    expect(b.t.peerStats(1)).toBeUndefined();
  });

  it('answers undefined for its own address, a wrong secret, or nothing listening, and sendBack without a connection is unknown-peer', async () => {
    const a = await node(1);
    expect(await a.t.dialAddress(a.address, 2_000)).toBeUndefined();
    const other = await node(3, { secret: 'another cluster secret, wrong one' });
    expect(await a.t.dialAddress(other.address, 2_000)).toBeUndefined();
    expect(a.t.peerStats(3)).toBeUndefined();
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const port = (dead.address() as { port: number }).port;
    await new Promise<void>((r) => dead.close(() => r()));
    expect(await a.t.dialAddress({ host: '127.0.0.1', port }, 2_000)).toBeUndefined();
    expect(a.t.sendBack(3, { n: 1 })).toBe('unknown-peer');
  });

  it('reuses a link it already has to the peer at that address', async () => {
    const a = await node(1);
    const b = await node(2);
    a.t.addPeer(2, b.address);
    expect(await a.t.dialAddress(b.address, 2_000)).toBe(2);
    expect(a.t.send(2, { n: 1 })).toBe('queued');
    await eventually(() => b.got.length === 1);
  });
});
