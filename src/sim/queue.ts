import { assert } from '../kernel/assert.ts';

/**
 * The simulator's event queue: a binary min-heap ordered by (time, sequence number), so
 * events at the same instant run in the order they were scheduled and a seed fixes the
 * whole order. Events live in parallel typed arrays indexed by a pooled slot number, so the
 * hot path (push, pop) allocates nothing once the pool has grown to the run's high-water mark.
 *
 * `pop()` copies the earliest event into the `time`, `kind`, `a`, `b` and `payload` fields
 * and frees its slot at once; the fields stay valid until the next `pop()`.
 */
export class EventQueue {
  time = 0;
  kind = 0;
  a = 0;
  b = 0;
  payload: unknown = undefined;

  private times: Float64Array;
  private seqs: Float64Array;
  private kinds: Uint8Array;
  private as: Int32Array;
  private bs: Float64Array;
  private payloads: unknown[];
  private heap: Int32Array;
  private free: Int32Array;
  private freeCount: number;
  private count = 0;
  private nextSeq = 0;
  private capacity: number;

  constructor(
    private readonly eventsMax: number,
    initialCapacity = 1024,
  ) {
    assert(Number.isSafeInteger(eventsMax) && eventsMax >= 1, 'eventsMax must be >= 1');
    assert(initialCapacity >= 1, 'initial capacity must be >= 1');
    this.capacity = Math.min(initialCapacity, eventsMax);
    this.times = new Float64Array(this.capacity);
    this.seqs = new Float64Array(this.capacity);
    this.kinds = new Uint8Array(this.capacity);
    this.as = new Int32Array(this.capacity);
    this.bs = new Float64Array(this.capacity);
    this.payloads = new Array<unknown>(this.capacity).fill(undefined);
    this.heap = new Int32Array(this.capacity);
    this.free = new Int32Array(this.capacity);
    for (let i = 0; i < this.capacity; i++) this.free[i] = this.capacity - 1 - i;
    this.freeCount = this.capacity;
  }

  get size(): number {
    return this.count;
  }

  /** Time of the earliest event, +Infinity when empty. */
  peekTime(): number {
    return this.count === 0 ? Number.POSITIVE_INFINITY : (this.times[this.heap[0]!] as number);
  }

  push(time: number, kind: number, a: number, b: number, payload: unknown): void {
    assert(!Number.isNaN(time), 'event time must not be NaN');
    if (this.freeCount === 0) this.grow();
    const slot = this.free[--this.freeCount]!;
    this.times[slot] = time;
    this.seqs[slot] = this.nextSeq++;
    this.kinds[slot] = kind;
    this.as[slot] = a;
    this.bs[slot] = b;
    this.payloads[slot] = payload;
    this.siftUp(this.count++, slot);
  }

  /** Removes the earliest event into the public fields; false when the queue is empty. */
  pop(): boolean {
    if (this.count === 0) return false;
    const heap = this.heap;
    const slot = heap[0]!;
    this.time = this.times[slot]!;
    this.kind = this.kinds[slot]!;
    this.a = this.as[slot]!;
    this.b = this.bs[slot]!;
    this.payload = this.payloads[slot];
    this.payloads[slot] = undefined;
    this.free[this.freeCount++] = slot;
    const last = heap[--this.count]!;
    if (this.count > 0) this.siftDown(0, last);
    return true;
  }

  private before(x: number, y: number): boolean {
    const tx = this.times[x]!;
    const ty = this.times[y]!;
    return tx < ty || (tx === ty && this.seqs[x]! < this.seqs[y]!);
  }

  private siftUp(start: number, slot: number): void {
    const heap = this.heap;
    let i = start;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!this.before(slot, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = slot;
  }

  private siftDown(start: number, slot: number): void {
    const heap = this.heap;
    const n = this.count;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && this.before(heap[right]!, heap[child]!)) child = right;
      const c = heap[child]!;
      if (!this.before(c, slot)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = slot;
  }

  private grow(): void {
    assert(
      this.capacity < this.eventsMax,
      `event queue full: more than eventsMax=${this.eventsMax} events pending`,
    );
    const old = this.capacity;
    const capacity = Math.min(old * 2, this.eventsMax);
    const widen = <A extends Float64Array | Int32Array | Uint8Array>(src: A, dst: A): A => {
      dst.set(src);
      return dst;
    };
    this.times = widen(this.times, new Float64Array(capacity));
    this.seqs = widen(this.seqs, new Float64Array(capacity));
    this.kinds = widen(this.kinds, new Uint8Array(capacity));
    this.as = widen(this.as, new Int32Array(capacity));
    this.bs = widen(this.bs, new Float64Array(capacity));
    this.heap = widen(this.heap, new Int32Array(capacity));
    for (let i = old; i < capacity; i++) this.payloads.push(undefined);
    const free = new Int32Array(capacity);
    free.set(this.free.subarray(0, this.freeCount));
    for (let slot = capacity - 1; slot >= old; slot--) free[this.freeCount++] = slot;
    this.free = free;
    this.capacity = capacity;
  }
}
