/**
 * The reference `Wal`: records in an array, durable for as long as the object lives. For the
 * simulator-style tests of hosts and as the model the file WAL is checked against.
 */
import { assert } from '../../kernel/assert.ts';
import type { Wal, WalEntry, WalRecord } from './wal.ts';

export class MemoryWal implements Wal {
  private records: WalRecord[] = [];
  private first: number;
  private closed = false;

  constructor(initialSeq = 1) {
    assert(Number.isSafeInteger(initialSeq) && initialSeq >= 0, `bad initialSeq ${initialSeq}`);
    this.first = initialSeq;
  }

  firstSeq(): number {
    return this.first;
  }

  nextSeq(): number {
    return this.first + this.records.length;
  }

  append(entries: readonly WalEntry[]): Promise<number> {
    this.checkOpen();
    assert(entries.length > 0, 'append needs at least one entry');
    const firstSeq = this.nextSeq();
    for (const e of entries) {
      assert(Number.isInteger(e.type) && e.type >= 0 && e.type <= 255, `type ${e.type} not a u8`);
      this.records.push({ seq: this.nextSeq(), type: e.type, payload: e.payload.slice() });
    }
    return Promise.resolve(firstSeq);
  }

  async *read(fromSeq = this.first): AsyncIterable<WalRecord> {
    this.checkOpen();
    const snapshot = this.records.slice(Math.max(0, fromSeq - this.first));
    for (const r of snapshot) yield { seq: r.seq, type: r.type, payload: r.payload.slice() };
  }

  truncateSuffix(fromSeq: number): Promise<void> {
    this.checkOpen();
    assert(
      fromSeq >= this.first && fromSeq <= this.nextSeq(),
      `truncateSuffix(${fromSeq}) outside [${this.first}, ${this.nextSeq()}]`,
    );
    this.records.length = fromSeq - this.first;
    return Promise.resolve();
  }

  /** Drops exactly the records below `beforeSeq` (a file WAL may keep some, segment-wise). */
  dropPrefix(beforeSeq: number): Promise<void> {
    this.checkOpen();
    const drop = Math.min(Math.max(0, beforeSeq - this.first), this.records.length);
    this.records.splice(0, drop);
    this.first += drop;
    return Promise.resolve();
  }

  reset(nextSeq: number): Promise<void> {
    this.checkOpen();
    assert(Number.isSafeInteger(nextSeq) && nextSeq >= 0, `reset to bad seq ${nextSeq}`);
    this.records = [];
    this.first = nextSeq;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.checkOpen();
    this.closed = true;
    return Promise.resolve();
  }

  private checkOpen(): void {
    assert(!this.closed, 'WAL used after close');
  }
}
