import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Agenda } from './interactive-agenda.ts';

describe('Agenda', () => {
  it('pops items by time, and items due at the same time in the order they were pushed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), (times) => {
        const agenda = new Agenda(1000);
        times.forEach((at, i) => {
          agenda.push(at, { kind: 'retry', request: i });
        });
        const popped: number[] = [];
        for (let next = agenda.pop(); next !== undefined; next = agenda.pop()) {
          if (next.item.kind === 'retry') popped.push(next.item.request);
        }
        const expected = times
          .map((at, i) => ({ at, i }))
          .sort((a, b) => a.at - b.at || a.i - b.i)
          .map((e) => e.i);
        expect(popped).toEqual(expected);
      }),
    );
  });

  it('refuses to grow past its bound', () => {
    const agenda = new Agenda(2);
    agenda.push(1, { kind: 'retry', request: 1 });
    agenda.push(2, { kind: 'retry', request: 2 });
    expect(agenda.hasRoom()).toBe(false);
    expect(() => agenda.push(3, { kind: 'retry', request: 3 })).toThrow(/full/);
  });
});
