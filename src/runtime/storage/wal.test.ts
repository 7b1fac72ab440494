import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileWal, listSegments } from './file-wal.ts';
import { MemoryWal } from './memory-wal.ts';
import { entry, readAll, walConformance } from './wal.cases.ts';
import { WalCorruptionError } from './wal.ts';
import { encodeHeader, HEADER_BYTES } from './wal-format.ts';

walConformance('MemoryWal', () => ({
  open: (initialSeq) => Promise.resolve(new MemoryWal(initialSeq)),
  cleanup: () => Promise.resolve(),
}));

/** Small segments so that the suite crosses segment boundaries constantly. */
walConformance('FileWal', () => {
  let dir: string | undefined;
  return {
    open: async (initialSeq) => {
      dir = await mkdtemp(join(tmpdir(), 'quorate-wal-'));
      return FileWal.open({ dir, initialSeq, segmentBytesMax: 200, recordBytesMax: 100 });
    },
    cleanup: async () => {
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('FileWal on disk', () => {
  let dir: string;
  const options = () => ({ dir, segmentBytesMax: 200, recordBytesMax: 100 });
  const texts = (n: number) => Array.from({ length: n }, (_, i) => `record-${i + 1}`);
  const payloads = async (wal: FileWal) =>
    (await readAll(wal)).map((r) => `${r.seq}=${new TextDecoder().decode(r.payload)}`);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quorate-wal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeLog(n: number): Promise<void> {
    const wal = await FileWal.open(options());
    for (const t of texts(n)) await wal.append([entry(0, t)]);
    await wal.close();
  }

  it('keeps everything across close and reopen, over several segments', async () => {
    await writeLog(30);
    expect((await listSegments(dir)).length).toBeGreaterThanOrEqual(3);
    const wal = await FileWal.open(options());
    expect(wal.nextSeq()).toBe(31);
    expect(await payloads(wal)).toEqual(texts(30).map((t, i) => `${i + 1}=${t}`));
    expect(await wal.append([entry(0, 'more')])).toBe(31);
    await wal.close();
  });

  it('persists truncation, prefix drops and resets', async () => {
    await writeLog(30);
    let wal = await FileWal.open(options());
    await wal.truncateSuffix(15);
    await wal.dropPrefix(12);
    await wal.close();
    wal = await FileWal.open(options());
    expect(wal.nextSeq()).toBe(15);
    expect(wal.firstSeq()).toBeGreaterThan(1);
    expect((await readAll(wal, 12)).map((r) => r.seq)).toEqual([12, 13, 14]);
    await wal.reset(500);
    await wal.close();
    wal = await FileWal.open(options());
    expect([wal.firstSeq(), wal.nextSeq()]).toEqual([500, 500]);
    expect(await readAll(wal)).toEqual([]);
    await wal.close();
  });

  it('cuts off a torn last record (a write cut short) and keeps every whole one', async () => {
    await writeLog(30);
    const segments = await listSegments(dir);
    const last = segments[segments.length - 1]!;
    await truncate(last.path, last.bytes - 3);
    const wal = await FileWal.open(options());
    expect(wal.nextSeq()).toBe(30);
    expect(await payloads(wal)).toEqual(texts(29).map((t, i) => `${i + 1}=${t}`));
    expect(await wal.append([entry(0, 'again')])).toBe(30);
    await wal.close();
    const reopened = await FileWal.open(options());
    expect((await payloads(reopened)).at(-1)).toBe('30=again');
    await reopened.close();
  });

  it('cuts off zeros after the last record (a file extended but never written)', async () => {
    await writeLog(10);
    const segments = await listSegments(dir);
    const last = segments[segments.length - 1]!;
    const bytes = await readFile(last.path);
    await writeFile(last.path, Buffer.concat([bytes, Buffer.alloc(4096)]));
    const wal = await FileWal.open(options());
    expect(wal.nextSeq()).toBe(11);
    expect(await payloads(wal)).toEqual(texts(10).map((t, i) => `${i + 1}=${t}`));
    await wal.close();
  });

  it('cuts off a last record whose checksum is wrong', async () => {
    await writeLog(10);
    const segments = await listSegments(dir);
    const last = segments[segments.length - 1]!;
    const bytes = await readFile(last.path);
    bytes[bytes.length - 1]! ^= 0xff;
    await writeFile(last.path, bytes);
    const wal = await FileWal.open(options());
    expect(wal.nextSeq()).toBe(10);
    await wal.close();
  });

  it('refuses to start on a corrupt record before the tail, naming file and offset', async () => {
    await writeLog(30);
    const segments = await listSegments(dir);
    const middle = segments[1]!;
    const bytes = await readFile(middle.path);
    const victim = HEADER_BYTES + 9 + 2; // inside the payload of the segment's first record
    bytes[victim]! ^= 0x01;
    await writeFile(middle.path, bytes);
    const error = await FileWal.open(options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalCorruptionError);
    const corruption = error as WalCorruptionError;
    expect(corruption.file).toBe(middle.path);
    expect(corruption.offset).toBe(HEADER_BYTES);
    expect(corruption.message).toMatch(/checksum mismatch/);
    expect(corruption.message).toContain(`${middle.path} at byte offset ${HEADER_BYTES}`);
  });

  it('refuses a corrupt record in the last segment when whole records follow it', async () => {
    const wal = await FileWal.open({ dir, segmentBytesMax: 10_000, recordBytesMax: 100 });
    for (const t of texts(5)) await wal.append([entry(0, t)]);
    await wal.close();
    const [only] = await listSegments(dir);
    const bytes = await readFile(only!.path);
    bytes[HEADER_BYTES + 9 + 18 + 4]! ^= 0x40; // the second record's payload
    await writeFile(only!.path, bytes);
    await expect(FileWal.open(options())).rejects.toThrow(WalCorruptionError);
  });

  it('finishes a reset that a crash interrupted once its new segment was durable', async () => {
    await writeLog(30);
    await writeFile(join(dir, 'reset.tmp'), encodeHeader(77, 0));
    const wal = await FileWal.open(options());
    expect([wal.firstSeq(), wal.nextSeq()]).toEqual([77, 77]);
    expect((await listSegments(dir)).length).toBe(1);
    await wal.close();
  });

  it('shares fsyncs between concurrent appenders and reports them', async () => {
    const syncs: { bytes: number; records: number }[] = [];
    const wal = await FileWal.open({
      dir,
      metrics: { fsync: (_ms, bytes, records) => syncs.push({ bytes, records }) },
    });
    await Promise.all(Array.from({ length: 64 }, (_, i) => wal.append([entry(0, `c${i}`)])));
    expect(syncs.reduce((n, s) => n + s.records, 0)).toBe(64);
    expect(syncs.length).toBeLessThan(64);
    expect(syncs.length).toBeLessThanOrEqual(2); // the first append's sync, then one for the rest
    await wal.close();
  });

  it('makes appends wait while too many bytes are pending, without reordering them', async () => {
    const wal = await FileWal.open({ dir, recordBytesMax: 100, pendingBytesMax: 300 });
    const big = new Uint8Array(100);
    const seqs = await Promise.all(
      Array.from({ length: 20 }, () => wal.append([{ type: 1, payload: big }])),
    );
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await wal.close();
  });

  it('fails every waiting and later call once a sync step has failed, never acknowledging', async () => {
    let syncs = 0;
    const wal = await FileWal.open({
      dir,
      metrics: {
        fsync: () => {
          syncs++;
          if (syncs === 2) throw new Error('simulated fsync failure');
        },
      },
    });
    expect(await wal.append([entry(0, 'ok')])).toBe(1);
    const failing = wal.append([entry(0, 'lost')]);
    const queued = wal.append([entry(0, 'behind it')]);
    await expect(failing).rejects.toThrow(/simulated/);
    await expect(queued).rejects.toThrow(/simulated/);
    expect(() => wal.append([entry(0, 'later')])).toThrow(/failed earlier/);
    await wal.close();
  });

  it('rejects settings that cannot hold one record', async () => {
    await expect(FileWal.open({ dir, segmentBytesMax: 50, recordBytesMax: 100 })).rejects.toThrow(
      /segmentBytesMax/,
    );
  });
});
