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

  it('keeps early replies apart from replies, and a lone early reply is a batch', () => {
    const out = new OutputBuffer<T>();
    out.replyEarly(7, 'committed');
    const first = out.ready();
    expect(first?.earlyReplies).toEqual([{ client: 7, reply: 'committed' }]);
    expect(first?.replies).toEqual([]);
    out.advance();
    out.reply(8, 'after the write');
    out.persist(1);
    const second = out.ready();
    expect(second?.earlyReplies).toEqual([]);
    expect(second?.replies).toEqual([{ client: 8, reply: 'after the write' }]);
  });

  it('refuses advance without a batch out', () => {
    const out = new OutputBuffer<T>();
    expect(() => out.advance()).toThrow(/advance/);
  });
});
