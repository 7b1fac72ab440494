/**
 * The conformance suite every `Transport` passes (run from transport.test.ts): one
 * behaviour, several implementations.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeId } from '../../kernel/ids.ts';
import type { QueueLimits, Transport } from './transport.ts';

export type TestMsg = {
  readonly n: number;
  readonly blob?: Uint8Array;
  readonly big?: bigint;
  readonly text?: string;
};

export interface TransportHarness {
  /** A transport for `id`; `port` re-listens where an earlier instance of `id` listened. */
  make(
    id: NodeId,
    limits?: Partial<QueueLimits> & { frameBytesMax?: number; port?: number },
  ): Transport<TestMsg>;
}

/** Waits until `done()` holds, polling; fails after `timeoutMs`. */
export async function eventually(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function transportConformance(name: string, makeHarness: () => TransportHarness): void {
  describe(`Transport conformance: ${name}`, () => {
    const started: Transport<TestMsg>[] = [];
    let harness = makeHarness();
    const node = async (id: NodeId, limits?: Parameters<TransportHarness['make']>[1]) => {
      const t = harness.make(id, limits);
      const got: [NodeId, TestMsg][] = [];
      t.onMessage((from, msg) => got.push([from, msg]));
      const address = await t.start();
      started.push(t);
      return { t, got, address };
    };
    afterEach(async () => {
      for (const t of started.splice(0)) await t.stop();
      harness = makeHarness();
    });

    it('carries messages both ways, in order per sender, with bytes, bigints and text intact', async () => {
      const a = await node(1);
      const b = await node(2);
      a.t.addPeer(2, b.address);
      b.t.addPeer(1, a.address);
      const blob = Uint8Array.from([0, 1, 254, 255]);
      for (let n = 0; n < 200; n++) expect(a.t.send(2, { n })).toMatch(/^queued/);
      a.t.send(2, { n: 200, blob, big: 2n ** 63n - 1n, text: 'héllo' });
      b.t.send(1, { n: -1, big: -(2n ** 40n) });
      await eventually(() => b.got.length === 201 && a.got.length === 1);
      expect(b.got.slice(0, 200).map(([, m]) => m.n)).toEqual(
        Array.from({ length: 200 }, (_, i) => i),
      );
      expect(b.got.every(([from]) => from === 1)).toBe(true);
      const last = b.got[200]?.[1];
      expect(last?.blob).toEqual(blob);
      expect(last?.big).toBe(2n ** 63n - 1n);
      expect(last?.text).toBe('héllo');
      expect(a.got[0]).toEqual([2, { n: -1, big: -(2n ** 40n) }]);
      expect(a.t.peerStats(2)?.sentMessages).toBe(201);
    });

    it('sends a burst of messages in a few writes rather than one write each', async () => {
      const a = await node(1);
      const b = await node(2);
      a.t.addPeer(2, b.address);
      a.t.send(2, { n: -1 });
      await eventually(() => b.got.length === 1);
      const writesBefore = a.t.peerStats(2)?.writes ?? 0;
      for (let n = 0; n < 100; n++) a.t.send(2, { n, text: 'x'.repeat(100) });
      await eventually(() => b.got.length === 101);
      expect((a.t.peerStats(2)?.writes ?? 0) - writesBefore).toBeLessThanOrEqual(2);
      // Every message's 100-byte text and its framing were counted as sent.
      expect(a.t.peerStats(2)?.sentBytes ?? 0).toBeGreaterThan(100 * 100);
    });

    it('answers typed results for unknown peers, oversized messages and a stopped transport', async () => {
      const a = await node(1, { frameBytesMax: 1000 });
      expect(a.t.send(9, { n: 1 })).toBe('unknown-peer');
      a.t.addPeer(2, { host: '127.0.0.1', port: 9 });
      expect(a.t.send(2, { n: 1, blob: new Uint8Array(2000) })).toBe('too-large');
      a.t.removePeer(2);
      expect(a.t.send(2, { n: 1 })).toBe('unknown-peer');
      expect(a.t.peerStats(2)).toBeUndefined();
      await a.t.stop();
      expect(a.t.send(2, { n: 1 })).toBe('stopped');
    });

    it('bounds the queue to an absent peer by dropping the oldest, then delivers the newest', async () => {
      const b0 = await node(2);
      const port = b0.address.port;
      await b0.t.stop();
      const a = await node(1, { queueMessagesMax: 3 });
      a.t.addPeer(2, b0.address);
      const results = Array.from({ length: 10 }, (_, n) => a.t.send(2, { n }));
      expect(results.slice(0, 3)).toEqual(['queued', 'queued', 'queued']);
      expect(results.slice(3).every((r) => r === 'queued-dropped-oldest')).toBe(true);
      expect(a.t.peerStats(2)).toMatchObject({
        queuedMessages: 3,
        droppedMessages: 7,
        connected: false,
      });
      const b = await node(2, { port });
      await eventually(() => b.got.length === 3);
      expect(b.got.map(([, m]) => m.n)).toEqual([7, 8, 9]);
    });

    it('reaches a peer again after it restarts', async () => {
      const a = await node(1);
      const b = await node(2);
      a.t.addPeer(2, b.address);
      a.t.send(2, { n: 1 });
      await eventually(() => b.got.length === 1);
      await b.t.stop();
      const b2 = await node(2, { port: b.address.port });
      await eventually(() => {
        a.t.send(2, { n: 2 }); // messages written into the dying connection may be lost
        return b2.got.length > 0;
      });
      expect(b2.got[0]?.[1].n).toBe(2);
    });
  });
}
