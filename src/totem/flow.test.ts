import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATAGRAM_HEADER_BYTES } from './config.ts';
import { allowance, SendQueue } from './flow.ts';
import { datagramBytes } from './wire.ts';

const origin = (n: number) => ({ node: 1, boot: 1, n });

describe('allowance (corosync fcc_calculate)', () => {
  it('is at most 17 per visit with an empty window and a lone sender', () => {
    expect(allowance(50, 17, 0, 100, 100)).toBe(17);
  });

  it('leaves the window to what the others sent last rotation', () => {
    expect(allowance(50, 17, 40, 100, 100)).toBe(10);
    expect(allowance(50, 17, 60, 100, 100)).toBe(0);
  });

  it('shares the window by backlog: window x mine / total', () => {
    expect(allowance(50, 17, 0, 10, 100)).toBe(5);
    // A share below one is not applied, so a small sender still sends.
    expect(allowance(50, 17, 0, 1, 1000)).toBe(17);
  });

  it('never exceeds max per visit or the room left in the window (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        (window, max, fcc, mine, others) => {
          const n = allowance(window, Math.min(max, window), fcc, mine, mine + others);
          expect(n).toBeGreaterThanOrEqual(0);
          expect(n).toBeLessThanOrEqual(Math.min(max, Math.max(0, window - fcc)));
        },
      ),
    );
  });
});

describe('SendQueue', () => {
  it('packs small messages into one datagram up to the mtu', () => {
    const q = new SendQueue(100, 1 << 20, 1328, 1400);
    for (let i = 1; i <= 20; i++) q.push(origin(i), 'agreed', new Uint8Array(100));
    const first = q.take()!;
    expect(first.items.length).toBe(10); // 48 + 10 x 124 = 1288; an 11th would pass 1,400
    expect(datagramBytes(first.items)).toBeLessThanOrEqual(1400);
    expect(q.take()!.items.length).toBe(10);
    expect(q.take()).toBeUndefined();
    expect(q.depth).toBe(0);
  });

  it('does not pack across delivery modes', () => {
    const q = new SendQueue(100, 1 << 20, 1344, 1400);
    q.push(origin(1), 'agreed', new Uint8Array(10));
    q.push(origin(2), 'safe', new Uint8Array(10));
    expect(q.take()!.mode).toBe('agreed');
    expect(q.take()!.mode).toBe('safe');
  });

  it('fragments a large message into one datagram per fragment, in order', () => {
    const q = new SendQueue(100, 1 << 20, 1344, 1400);
    const data = Uint8Array.from({ length: 4000 }, (_, i) => i & 0xff);
    q.push(origin(1), 'safe', data);
    const parts = [q.take()!, q.take()!, q.take()!];
    expect(q.take()).toBeUndefined();
    expect(parts.map((p) => p.items[0]!.part)).toEqual([0, 1, 2]);
    expect(parts.every((p) => p.items[0]!.parts === 3)).toBe(true);
    const joined = parts.flatMap((p) => [...p.items[0]!.data]);
    expect(joined).toEqual([...data]);
    expect(DATAGRAM_HEADER_BYTES).toBeGreaterThan(0);
  });

  it('is bounded in messages and bytes', () => {
    const q = new SendQueue(2, 100, 1344, 1400);
    q.push(origin(1), 'agreed', new Uint8Array(10));
    expect(q.fits(95)).toBe(false);
    q.push(origin(2), 'agreed', new Uint8Array(10));
    expect(q.fits(1)).toBe(false);
  });

  it('restarts a partly sent message from its first fragment', () => {
    const q = new SendQueue(10, 1 << 20, 1344, 1400);
    q.push(origin(1), 'agreed', new Uint8Array(3000));
    expect(q.take()!.items[0]!.part).toBe(0);
    q.restartHead();
    expect(q.take()!.items[0]!.part).toBe(0);
  });
});
