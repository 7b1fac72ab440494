import { describe, expect, it } from 'vitest';
import { OutputBuffer } from './core.ts';

interface T {
  msg: string;
  persist: number;
  deliver: string;
  request: string;
  reply: string;
  event: string;
}

describe('OutputBuffer', () => {
  it('hands out one batch at a time and collects later output for the next batch', () => {
    const out = new OutputBuffer<T>();
    expect(out.ready()).toBeUndefined();
    out.persist(1);
    out.send(2, 'vote');
    const first = out.ready();
    expect(first?.persist).toEqual([1]);
    expect(first?.messages).toEqual([{ to: 2, msg: 'vote' }]);
    out.send(3, 'later');
    expect(out.ready()).toBeUndefined(); // the first batch is still out
    expect(first?.messages).toEqual([{ to: 2, msg: 'vote' }]); // unchanged by later output
    out.advance();
    const second = out.ready();
    expect(second?.persist).toEqual([]);
    expect(second?.messages).toEqual([{ to: 3, msg: 'later' }]);
    out.advance();
    expect(out.ready()).toBeUndefined();
  });

  it('refuses advance without a batch out', () => {
    const out = new OutputBuffer<T>();
    expect(() => out.advance()).toThrow(/advance/);
  });
});
