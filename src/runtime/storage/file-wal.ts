/**
 * The real `Wal`: segment files in one directory, group commit, fdatasync before an append
 * resolves. Format and recovery rules are in wal-format.ts.
 *
 * All work runs through one queue in call order. The writer takes every queued append (up to
 * `batchBytesMax`), writes them with one write per segment touched and one fdatasync, then
 * resolves them together: appends called while a sync is running form the next batch.
 * A failed write or sync poisons the log (after a failed fsync the page cache state is
 * unknown, so retrying could acknowledge lost data); every later call rejects.
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { assert } from '../../kernel/assert.ts';
import { DURABLE_CREATE, DURABLE_OPEN, fsyncDir, SYNC_ON_WRITE } from './fs-durable.ts';
import type { Wal, WalEntry, WalMetrics, WalRecord } from './wal.ts';
import { WalCorruptionError } from './wal.ts';
import {
  decodeHeader,
  encodeHeader,
  encodeRecord,
  HEADER_BYTES,
  parseSegmentName,
  RECORD_HEADER_BYTES,
  scanSegment,
  segmentName,
} from './wal-format.ts';

export interface FileWalOptions {
  readonly dir: string;
  /** Seq of the first record of a brand-new log. Default 1 (a Raft log index). */
  readonly initialSeq?: number;
  /** A segment is closed and a new one started before it would exceed this. Default 64 MiB. */
  readonly segmentBytesMax?: number;
  /** Largest payload accepted. Default 8 MiB. */
  readonly recordBytesMax?: number;
  /** Most bytes written per fdatasync. Default 4 MiB. */
  readonly batchBytesMax?: number;
  /** Appends wait before queuing while this many bytes are queued. Default 32 MiB. */
  readonly pendingBytesMax?: number;
  readonly metrics?: WalMetrics;
}

const RESET_TEMP = 'reset.tmp';

interface Segment {
  readonly firstSeq: number;
  readonly path: string;
  /** Byte offset of each record; offsets.length is the record count. */
  readonly offsets: number[];
  size: number;
}

interface AppendOp {
  readonly kind: 'append';
  readonly entries: readonly WalEntry[];
  readonly firstSeq: number;
  readonly bytes: number;
  readonly resolve: (seq: number) => void;
  readonly reject: (e: unknown) => void;
}

interface ControlOp {
  readonly kind: 'control';
  readonly run: () => Promise<void>;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

type Op = AppendOp | ControlOp;

export class FileWal implements Wal {
  private readonly segmentBytesMax: number;
  private readonly recordBytesMax: number;
  private readonly batchBytesMax: number;
  private readonly pendingBytesMax: number;
  private readonly metrics: WalMetrics;
  private readonly queue: Op[] = [];
  /** Ops not yet admitted to `queue` because too many bytes are pending, in call order. */
  private readonly admission: Op[] = [];
  private pendingBytes = 0;
  private running = false;
  private next: number;
  private first: number;
  private closed = false;
  private failure: unknown;

  private constructor(
    private readonly dir: string,
    private readonly segments: Segment[],
    private handle: FileHandle,
    options: FileWalOptions,
  ) {
    this.segmentBytesMax = options.segmentBytesMax ?? 64 * 1024 * 1024;
    this.recordBytesMax = options.recordBytesMax ?? 8 * 1024 * 1024;
    this.batchBytesMax = options.batchBytesMax ?? 4 * 1024 * 1024;
    this.pendingBytesMax = options.pendingBytesMax ?? 32 * 1024 * 1024;
    this.metrics = options.metrics ?? {};
    const last = this.lastSegment();
    this.first = (segments[0] as Segment).firstSeq;
    this.next = last.firstSeq + last.offsets.length;
  }

  /**
   * Opens (or creates) the log in `options.dir`, cutting off a torn tail and finishing an
   * interrupted `reset`. Throws `WalCorruptionError` if a record before the tail is damaged.
   */
  static async open(options: FileWalOptions): Promise<FileWal> {
    validateOptions(options);
    const recordBytesMax = options.recordBytesMax ?? 8 * 1024 * 1024;
    const dir = options.dir;
    await mkdir(dir, { recursive: true });
    await finishInterruptedReset(dir);
    const segments = await loadSegments(dir, recordBytesMax);
    if (segments.length === 0) {
      const created = await createSegment(dir, options.initialSeq ?? 1);
      await fsyncDir(dir);
      return new FileWal(dir, [created.segment], created.handle, options);
    }
    const last = segments[segments.length - 1] as Segment;
    const handle = await open(last.path, DURABLE_OPEN);
    const onDisk = (await handle.stat()).size;
    if (onDisk > last.size) {
      await handle.truncate(last.size);
      await handle.datasync();
    }
    return new FileWal(dir, segments, handle, options);
  }

  firstSeq(): number {
    return this.first;
  }

  nextSeq(): number {
    return this.next;
  }

  append(entries: readonly WalEntry[]): Promise<number> {
    this.checkOpen();
    assert(entries.length > 0, 'append needs at least one entry');
    let bytes = 0;
    for (const e of entries) {
      assert(Number.isInteger(e.type) && e.type >= 0 && e.type <= 255, `type ${e.type} not a u8`);
      assert(e.payload.length <= this.recordBytesMax, `record of ${e.payload.length} B too big`);
      bytes += RECORD_HEADER_BYTES + e.payload.length;
    }
    const firstSeq = this.next;
    this.next += entries.length;
    return new Promise<number>((resolve, reject) => {
      this.submit({ kind: 'append', entries, firstSeq, bytes, resolve, reject });
    });
  }

  async *read(fromSeq = this.first): AsyncIterable<WalRecord> {
    this.checkOpen();
    const view = this.segments.map((s) => ({
      path: s.path,
      first: s.firstSeq,
      count: s.offsets.length,
      offsets: s.offsets,
    }));
    for (const seg of view) {
      if (seg.first + seg.count <= fromSeq) continue;
      const bytes = await readFile(seg.path);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = Math.max(0, fromSeq - seg.first); i < seg.count; i++) {
        const at = seg.offsets[i] as number;
        const len = dv.getUint32(at, true);
        const start = at + RECORD_HEADER_BYTES;
        yield {
          seq: seg.first + i,
          type: bytes[at + 8] as number,
          payload: Uint8Array.prototype.slice.call(bytes, start, start + len),
        };
      }
    }
  }

  truncateSuffix(fromSeq: number): Promise<void> {
    this.checkOpen();
    assert(
      fromSeq >= this.first && fromSeq <= this.next,
      `truncateSuffix(${fromSeq}) outside [${this.first}, ${this.next}]`,
    );
    this.next = fromSeq;
    return this.control(() => this.doTruncate(fromSeq));
  }

  dropPrefix(beforeSeq: number): Promise<void> {
    this.checkOpen();
    return this.control(() => this.doDropPrefix(beforeSeq));
  }

  reset(nextSeq: number): Promise<void> {
    this.checkOpen();
    assert(Number.isSafeInteger(nextSeq) && nextSeq >= 0, `reset to bad seq ${nextSeq}`);
    this.next = nextSeq;
    this.first = nextSeq;
    return this.control(() => this.doReset(nextSeq));
  }

  /** Also releases the files of a failed log (the only call a failed log still accepts). */
  async close(): Promise<void> {
    if (this.failure !== undefined && !this.closed) {
      this.closed = true;
      await this.handle.close();
      return;
    }
    this.checkOpen();
    const done = this.control(() => this.handle.close());
    this.closed = true;
    await done;
  }

  private checkOpen(): void {
    if (this.failure !== undefined) throw new Error('WAL failed earlier', { cause: this.failure });
    assert(!this.closed, 'WAL used after close');
  }

  private lastSegment(): Segment {
    const last = this.segments[this.segments.length - 1];
    assert(last !== undefined, 'a WAL always has at least one segment');
    return last;
  }

  private control(run: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.submit({ kind: 'control', run, resolve, reject });
    });
  }

  private submit(op: Op): void {
    this.admission.push(op);
    this.admit();
    void this.drain();
  }

  /** Moves ops from admission to the queue, in order, while pending bytes allow. */
  private admit(): void {
    for (;;) {
      const op = this.admission[0];
      if (op === undefined) return;
      const bytes = op.kind === 'append' ? op.bytes : 0;
      if (this.pendingBytes > 0 && this.pendingBytes + bytes > this.pendingBytesMax) return;
      this.admission.shift();
      this.pendingBytes += bytes;
      this.queue.push(op);
    }
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    let inFlight: readonly Op[] = [];
    try {
      while (this.queue.length > 0 && this.failure === undefined) {
        const head = this.queue[0] as Op;
        if (head.kind === 'control') {
          inFlight = [this.queue.shift() as Op];
          await head.run();
          head.resolve();
          continue;
        }
        const batch = this.takeAppendBatch();
        inFlight = batch;
        await this.writeBatch(batch);
        for (const op of batch) {
          this.pendingBytes -= op.bytes;
          op.resolve(op.firstSeq);
        }
        inFlight = [];
        this.admit();
      }
    } catch (e) {
      for (const op of inFlight) op.reject(e);
      this.fail(e);
    } finally {
      this.running = false;
    }
  }

  private takeAppendBatch(): AppendOp[] {
    const batch: AppendOp[] = [];
    let bytes = 0;
    for (;;) {
      const op = this.queue[0];
      if (op === undefined || op.kind !== 'append') break;
      if (batch.length > 0 && bytes + op.bytes > this.batchBytesMax) break;
      this.queue.shift();
      batch.push(op);
      bytes += op.bytes;
    }
    assert(batch.length > 0, 'takeAppendBatch called without a queued append');
    return batch;
  }

  private fail(e: unknown): void {
    this.failure = e;
    for (const op of [...this.queue.splice(0), ...this.admission.splice(0)]) op.reject(e);
  }

  /** Writes one batch: one durable write per segment touched (and a directory sync on a roll). */
  private async writeBatch(batch: readonly AppendOp[]): Promise<void> {
    const started = performance.now();
    let total = 0;
    let records = 0;
    for (const op of batch) total += op.bytes;
    const buf = new Uint8Array(total);
    let from = 0;
    let at = 0;
    let rolled = false;
    for (const op of batch) {
      assert(op.firstSeq === this.physicalNext(), `append at ${op.firstSeq} out of order`);
      for (const entry of op.entries) {
        const size = RECORD_HEADER_BYTES + entry.payload.length;
        let seg = this.lastSegment();
        if (seg.offsets.length > 0 && seg.size + (at - from) + size > this.segmentBytesMax) {
          await this.writeAt(buf.subarray(from, at));
          await this.handle.datasync();
          from = at;
          await this.roll(seg.firstSeq + seg.offsets.length);
          rolled = true;
          seg = this.lastSegment();
        }
        seg.offsets.push(seg.size + (at - from));
        at = encodeRecord(buf, at, entry.type, entry.payload);
        records++;
      }
    }
    await this.writeAt(buf.subarray(from, at));
    if (!SYNC_ON_WRITE) await this.handle.datasync();
    if (rolled) await fsyncDir(this.dir);
    this.metrics.fsync?.(performance.now() - started, total, records);
  }

  private async writeAt(bytes: Uint8Array): Promise<void> {
    const seg = this.lastSegment();
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, seg.size);
      done += bytesWritten;
      seg.size += bytesWritten;
    }
  }

  private physicalNext(): number {
    const last = this.lastSegment();
    return last.firstSeq + last.offsets.length;
  }

  private async roll(firstSeq: number): Promise<void> {
    await this.handle.close();
    const created = await createSegment(this.dir, firstSeq);
    this.segments.push(created.segment);
    this.handle = created.handle;
  }

  private async doTruncate(fromSeq: number): Promise<void> {
    let removed = false;
    while (this.segments.length > 1 && this.lastSegment().firstSeq > fromSeq) {
      const gone = this.segments.pop() as Segment;
      await this.handle.close();
      await unlink(gone.path);
      this.handle = await open(this.lastSegment().path, DURABLE_OPEN);
      removed = true;
    }
    if (removed) await fsyncDir(this.dir);
    const seg = this.lastSegment();
    const keep = fromSeq - seg.firstSeq;
    assert(keep >= 0 && keep <= seg.offsets.length, `truncate to ${fromSeq} not in last segment`);
    if (keep === seg.offsets.length) return;
    seg.size = seg.offsets[keep] as number;
    seg.offsets.length = keep;
    await this.handle.truncate(seg.size);
    await this.handle.datasync();
  }

  private async doDropPrefix(beforeSeq: number): Promise<void> {
    let removed = false;
    // Oldest first, so a crash part-way leaves a contiguous run of segments.
    while (this.segments.length > 1 && (this.segments[1] as Segment).firstSeq <= beforeSeq) {
      const gone = this.segments.shift() as Segment;
      await unlink(gone.path);
      removed = true;
    }
    if (removed) await fsyncDir(this.dir);
    this.first = Math.max(this.first, (this.segments[0] as Segment).firstSeq);
  }

  /**
   * Write the new empty segment under a temp name first: once it is durable, open() treats
   * its presence as "finish this reset", so a crash at any point leaves either the old log or
   * the new one, never a mix.
   */
  private async doReset(nextSeq: number): Promise<void> {
    const tmp = join(this.dir, RESET_TEMP);
    const fresh = await open(tmp, 'w');
    await fresh.write(encodeHeader(nextSeq, 0));
    await fresh.datasync();
    await fresh.close();
    await fsyncDir(this.dir);
    await this.handle.close();
    for (const seg of this.segments.splice(0).reverse()) await unlink(seg.path);
    await fsyncDir(this.dir);
    const path = join(this.dir, segmentName(nextSeq));
    await rename(tmp, path);
    await fsyncDir(this.dir);
    this.segments.push({ firstSeq: nextSeq, path, offsets: [], size: HEADER_BYTES });
    this.handle = await open(path, DURABLE_OPEN);
  }
}

function validateOptions(o: FileWalOptions): void {
  const segmentBytesMax = o.segmentBytesMax ?? 64 * 1024 * 1024;
  const recordBytesMax = o.recordBytesMax ?? 8 * 1024 * 1024;
  const batchBytesMax = o.batchBytesMax ?? 4 * 1024 * 1024;
  const pendingBytesMax = o.pendingBytesMax ?? 32 * 1024 * 1024;
  const isSize = (n: number) => Number.isSafeInteger(n) && n > 0;
  assert(isSize(recordBytesMax), `recordBytesMax must be positive, got ${recordBytesMax}`);
  assert(
    isSize(segmentBytesMax) &&
      segmentBytesMax >= HEADER_BYTES + RECORD_HEADER_BYTES + recordBytesMax,
    'segmentBytesMax must hold at least one largest record',
  );
  assert(isSize(batchBytesMax), `batchBytesMax must be positive, got ${batchBytesMax}`);
  assert(
    isSize(pendingBytesMax) && pendingBytesMax >= RECORD_HEADER_BYTES + recordBytesMax,
    'pendingBytesMax must hold at least one largest record',
  );
  const initialSeq = o.initialSeq ?? 1;
  assert(Number.isSafeInteger(initialSeq) && initialSeq >= 0, `bad initialSeq ${initialSeq}`);
}

async function createSegment(dir: string, firstSeq: number) {
  const path = join(dir, segmentName(firstSeq));
  const handle = await open(path, DURABLE_CREATE);
  await handle.write(encodeHeader(firstSeq, 0), 0, HEADER_BYTES, 0);
  const segment: Segment = { firstSeq, path, offsets: [], size: HEADER_BYTES };
  return { segment, handle };
}

/** See `doReset`: a durable reset.tmp means the reset had started deleting the old log. */
async function finishInterruptedReset(dir: string): Promise<void> {
  const tmp = join(dir, RESET_TEMP);
  const bytes = await readFile(tmp).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (bytes === undefined) return;
  const header = bytes.length === HEADER_BYTES ? decodeHeader(bytes, tmp) : undefined;
  if (header === undefined) {
    await unlink(tmp); // torn before it was durable, so no old segment was touched yet
    await fsyncDir(dir);
    return;
  }
  for (const name of await readdir(dir)) {
    if (parseSegmentName(name) !== undefined) await unlink(join(dir, name));
  }
  await fsyncDir(dir);
  await rename(tmp, join(dir, segmentName(header.firstSeq)));
  await fsyncDir(dir);
}

async function loadSegments(dir: string, recordBytesMax: number): Promise<Segment[]> {
  const names = (await readdir(dir))
    .map((name) => ({ name, seq: parseSegmentName(name) }))
    .filter((s): s is { name: string; seq: number } => s.seq !== undefined)
    .sort((a, b) => a.seq - b.seq);
  const segments: Segment[] = [];
  for (const [i, { name, seq }] of names.entries()) {
    const path = join(dir, name);
    const isLast = i === names.length - 1;
    const bytes = await readFile(path);
    const header = decodeHeader(bytes, path);
    if (header === undefined) {
      if (!isLast) throw new WalCorruptionError(path, 0, 'segment header missing');
      await unlink(path); // its creation was torn; nothing in it was acknowledged
      await fsyncDir(dir);
      break;
    }
    if (header.firstSeq !== seq) {
      throw new WalCorruptionError(path, 8, `header says first seq ${header.firstSeq}`);
    }
    const prev = segments[segments.length - 1];
    if (prev !== undefined && prev.firstSeq + prev.offsets.length !== seq) {
      throw new WalCorruptionError(
        path,
        0,
        `expected first seq ${prev.firstSeq + prev.offsets.length}`,
      );
    }
    const scan = scanSegment(bytes, path, isLast, recordBytesMax);
    segments.push({ firstSeq: seq, path, offsets: scan.offsets, size: scan.validEnd });
  }
  return segments;
}

/** For tests and tools: the segment files of a log directory, oldest first. */
export async function listSegments(dir: string): Promise<{ path: string; bytes: number }[]> {
  const names = (await readdir(dir)).filter((n) => parseSegmentName(n) !== undefined).sort();
  return Promise.all(
    names.map(async (n) => ({ path: join(dir, n), bytes: (await stat(join(dir, n))).size })),
  );
}
