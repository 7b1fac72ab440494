import { assert } from '../kernel/assert.ts';

/** One scheduled happening of the playground engine. */
export type AgendaItem =
  | { readonly kind: 'deliver'; readonly flight: number }
  | { readonly kind: 'tick'; readonly node: number; readonly gen: number }
  | { readonly kind: 'retry'; readonly request: number };

interface Slot {
  readonly at: number;
  readonly seq: number;
  readonly item: AgendaItem;
}

/**
 * A bounded min-heap of agenda items ordered by (time, insertion order), so items due at the
 * same instant run in the order they were scheduled and a seed fixes the whole run. The
 * playground holds tens of items at a time, so a plain array heap is plenty.
 */
export class Agenda {
  private readonly heap: Slot[] = [];
  private seq = 0;

  constructor(private readonly itemsMax: number) {
    assert(Number.isSafeInteger(itemsMax) && itemsMax >= 1, 'itemsMax must be >= 1');
  }

  get size(): number {
    return this.heap.length;
  }

  /** Whether there is room for one more item (callers shed load instead of overflowing). */
  hasRoom(): boolean {
    return this.heap.length < this.itemsMax;
  }

  push(at: number, item: AgendaItem): void {
    assert(Number.isFinite(at), 'agenda time must be finite');
    assert(this.hasRoom(), `agenda full (${this.itemsMax} items)`);
    const heap = this.heap;
    heap.push({ at, seq: this.seq++, item });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** Time of the earliest item, +Infinity when empty. */
  peekTime(): number {
    return this.heap[0]?.at ?? Number.POSITIVE_INFINITY;
  }

  pop(): { at: number; item: AgendaItem } | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.siftDown();
    }
    return { at: top.at, item: top.item };
  }

  private siftDown(): void {
    const heap = this.heap;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  }
}

function before(a: Slot, b: Slot): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
