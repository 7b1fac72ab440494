import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventQueue } from './queue.ts';

function drain(q: EventQueue): [number, number][] {
  const out: [number, number][] = [];
  while (q.pop()) out.push([q.time, q.a]);
  return out;
}

describe('EventQueue', () => {
  it('pops by time, and in scheduling order among equal times', () => {
    const q = new EventQueue(100, 2);
    q.push(5, 1, 0, 0, undefined);
    q.push(1, 1, 1, 0, undefined);
    q.push(5, 1, 2, 0, undefined);
    q.push(3, 1, 3, 0, 'payload');
    q.push(1, 1, 4, 0, undefined);
    expect(q.size).toBe(5);
    expect(q.peekTime()).toBe(1);
    expect(drain(q)).toEqual([
      [1, 1],
      [1, 4],
      [3, 3],
      [5, 0],
      [5, 2],
    ]);
    expect(q.pop()).toBe(false);
    expect(q.peekTime()).toBe(Number.POSITIVE_INFINITY);
  });

  it('carries kind, fields and payload with each event, and frees the payload slot', () => {
    const q = new EventQueue(10, 1);
    q.push(2, 7, -3, 123456789012, { m: 1 });
    q.push(1, 9, 4, 0.5, 'first');
    expect(q.pop()).toBe(true);
    expect([q.kind, q.a, q.b, q.payload]).toEqual([9, 4, 0.5, 'first']);
    expect(q.pop()).toBe(true);
    expect([q.kind, q.a, q.b, q.payload]).toEqual([7, -3, 123456789012, { m: 1 }]);
  });

  it('agrees with a stable sort on (time, insertion order), interleaving pushes and pops', () => {
    const op = fc.oneof(
      fc.record({ push: fc.integer({ min: 0, max: 20 }) }),
      fc.constant({ pop: true as const }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const q = new EventQueue(1000, 1);
        const model: { time: number; id: number }[] = [];
        let id = 0;
        let floor = 0;
        for (const o of ops) {
          if ('push' in o) {
            // Simulated time never goes back: events are scheduled at or after the last pop.
            const time = floor + o.push;
            q.push(time, 1, id, 0, undefined);
            model.push({ time, id: id++ });
          } else if (model.length > 0) {
            model.sort((x, y) => x.time - y.time || x.id - y.id);
            const want = model.shift()!;
            expect(q.pop()).toBe(true);
            expect([q.time, q.a]).toEqual([want.time, want.id]);
            floor = want.time;
          }
        }
        model.sort((x, y) => x.time - y.time || x.id - y.id);
        expect(drain(q)).toEqual(model.map((m) => [m.time, m.id]));
      }),
    );
  });

  it('grows up to eventsMax and refuses to go past it', () => {
    const q = new EventQueue(5, 2);
    for (let i = 0; i < 5; i++) q.push(i, 1, i, 0, undefined);
    expect(() => q.push(9, 1, 9, 0, undefined)).toThrow(/eventsMax=5/);
    expect(drain(q).map(([, a]) => a)).toEqual([0, 1, 2, 3, 4]);
  });
});
