/**
 * Snapshot storage: a protocol's state machine image at some position, written atomically
 * and read back as a stream of chunks, so a snapshot is never held whole in memory or sent
 * as one message. `meta` is the protocol's own description (Raft: last index, term, config).
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../../kernel/assert.ts';
import { crc32c } from '../crc32c.ts';
import { fsyncDir, removeTempFiles } from './fs-durable.ts';

export interface SnapshotInfo {
  /** Increasing with every committed snapshot. */
  readonly id: number;
  readonly meta: Uint8Array;
  /** Size of the data, excluding meta. */
  readonly dataBytes: number;
}

/** An unfinished snapshot: invisible until `commit`, gone after `abort` or a crash. */
export interface SnapshotWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the snapshot durable and the latest; older ones beyond the retention go. */
  commit(): Promise<SnapshotInfo>;
  abort(): Promise<void>;
}

export interface SnapshotStore {
  latest(): SnapshotInfo | undefined;
  create(meta: Uint8Array): Promise<SnapshotWriter>;
  /** The data of snapshot `id` in chunks of at most `chunkBytesMax`; throws if it was damaged. */
  read(id: number, chunkBytesMax?: number): AsyncIterable<Uint8Array>;
}

/** Writes a whole snapshot from an (async) iterable of chunks. */
export async function writeSnapshot(
  store: SnapshotStore,
  meta: Uint8Array,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<SnapshotInfo> {
  const writer = await store.create(meta);
  try {
    for await (const chunk of chunks) await writer.write(chunk);
  } catch (e) {
    await writer.abort();
    throw e;
  }
  return writer.commit();
}

export class SnapshotCorruptionError extends Error {
  override readonly name = 'SnapshotCorruptionError';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`snapshot ${file} is damaged: ${reason}`);
  }
}

export class MemorySnapshotStore implements SnapshotStore {
  private current: { info: SnapshotInfo; data: Uint8Array[] } | undefined;
  private nextId = 1;

  latest(): SnapshotInfo | undefined {
    return this.current?.info;
  }

  create(meta: Uint8Array): Promise<SnapshotWriter> {
    const data: Uint8Array[] = [];
    let done = false;
    const writer: SnapshotWriter = {
      write: (chunk) => {
        assert(!done, 'write to a finished snapshot');
        data.push(chunk.slice());
        return Promise.resolve();
      },
      commit: () => {
        assert(!done, 'snapshot committed twice');
        done = true;
        const dataBytes = data.reduce((n, c) => n + c.length, 0);
        const info = { id: this.nextId++, meta: meta.slice(), dataBytes };
        this.current = { info, data };
        return Promise.resolve(info);
      },
      abort: () => {
        done = true;
        return Promise.resolve();
      },
    };
    return Promise.resolve(writer);
  }

  async *read(id: number, chunkBytesMax = 1024 * 1024): AsyncIterable<Uint8Array> {
    const snap = this.current;
    assert(snap !== undefined && snap.info.id === id, `no snapshot ${id}`);
    for (const chunk of snap.data) {
      for (let at = 0; at < chunk.length; at += chunkBytesMax) {
        yield chunk.slice(at, at + chunkBytesMax);
      }
    }
  }
}

/**
 * file = magic "QSNP" u32 | version u8 | 0 u8[3] | metaLen u32 | meta | data
 *        | dataBytes u64 | crc32c(meta ++ data) u32 | magic u32
 */
const MAGIC = 0x504e5351;
const HEADER_BYTES = 12;
const TRAILER_BYTES = 16;
const nameOf = (id: number) => `${id.toString(16).padStart(16, '0')}.snap`;
const idOf = (name: string) => {
  const m = /^([0-9a-f]{16})\.snap$/.exec(name);
  return m ? Number.parseInt(m[1] as string, 16) : undefined;
};

export class FileSnapshotStore implements SnapshotStore {
  private constructor(
    private readonly dir: string,
    private current: SnapshotInfo | undefined,
    private readonly retain: number,
  ) {}

  /**
   * Opens `dir`, discarding unfinished snapshots and checking the newest one end to end.
   * `retain` committed snapshots are kept (the newest, plus older ones a reader may still use).
   */
  static async open(dir: string, retain = 2): Promise<FileSnapshotStore> {
    assert(Number.isInteger(retain) && retain >= 1, `retain must be >= 1, got ${retain}`);
    await mkdir(dir, { recursive: true });
    await removeTempFiles(dir);
    const ids = (await readdir(dir)).map(idOf).filter((id): id is number => id !== undefined);
    const newest = Math.max(0, ...ids);
    const store = new FileSnapshotStore(dir, undefined, retain);
    if (newest > 0) {
      store.current = await readInfo(join(dir, nameOf(newest)), newest);
      for await (const _ of store.read(newest)) {
        // Reading to the end verifies the checksum.
      }
    }
    return store;
  }

  latest(): SnapshotInfo | undefined {
    return this.current;
  }

  async create(meta: Uint8Array): Promise<SnapshotWriter> {
    const id = (this.current?.id ?? 0) + 1;
    const final = join(this.dir, nameOf(id));
    const tmp = `${final}.tmp`;
    const handle = await open(tmp, 'w');
    const header = new Uint8Array(HEADER_BYTES);
    const view = new DataView(header.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint8(4, 1);
    view.setUint32(8, meta.length, true);
    await handle.write(header);
    await handle.write(meta);
    return new FileSnapshotWriter(this, handle, tmp, final, id, meta.slice());
  }

  /** Called by a writer once its file is in place. */
  async committed(info: SnapshotInfo): Promise<void> {
    assert(info.id > (this.current?.id ?? 0), 'snapshots must commit in id order');
    this.current = info;
    const old = (await readdir(this.dir))
      .map(idOf)
      .filter((id): id is number => id !== undefined && id <= info.id - this.retain);
    for (const id of old) await unlink(join(this.dir, nameOf(id)));
    if (old.length > 0) await fsyncDir(this.dir);
  }

  async *read(id: number, chunkBytesMax = 1024 * 1024): AsyncIterable<Uint8Array> {
    assert(Number.isInteger(chunkBytesMax) && chunkBytesMax > 0, 'chunkBytesMax must be > 0');
    const path = join(this.dir, nameOf(id));
    const info = await readInfo(path, id);
    const handle = await open(path, 'r');
    try {
      let position = HEADER_BYTES + info.meta.length;
      let crc = crc32c(info.meta);
      const end = position + info.dataBytes;
      while (position < end) {
        const chunk = new Uint8Array(Math.min(chunkBytesMax, end - position));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
        if (bytesRead !== chunk.length) throw new SnapshotCorruptionError(path, 'file cut short');
        crc = crc32c(chunk, crc);
        position += bytesRead;
        yield chunk;
      }
      const trailer = new Uint8Array(TRAILER_BYTES);
      await handle.read(trailer, 0, TRAILER_BYTES, end);
      if (new DataView(trailer.buffer).getUint32(8, true) !== crc) {
        throw new SnapshotCorruptionError(path, 'checksum mismatch');
      }
    } finally {
      await handle.close();
    }
  }
}

class FileSnapshotWriter implements SnapshotWriter {
  private crc: number;
  private dataBytes = 0;
  private done = false;

  constructor(
    private readonly store: FileSnapshotStore,
    private readonly handle: FileHandle,
    private readonly tmp: string,
    private readonly final: string,
    private readonly id: number,
    private readonly meta: Uint8Array,
  ) {
    this.crc = crc32c(meta);
  }

  async write(chunk: Uint8Array): Promise<void> {
    assert(!this.done, 'write to a finished snapshot');
    this.crc = crc32c(chunk, this.crc);
    this.dataBytes += chunk.length;
    await this.handle.write(chunk);
  }

  async commit(): Promise<SnapshotInfo> {
    assert(!this.done, 'snapshot committed twice');
    this.done = true;
    const trailer = new Uint8Array(TRAILER_BYTES);
    const view = new DataView(trailer.buffer);
    view.setBigUint64(0, BigInt(this.dataBytes), true);
    view.setUint32(8, this.crc, true);
    view.setUint32(12, MAGIC, true);
    await this.handle.write(trailer);
    await this.handle.datasync();
    await this.handle.close();
    await rename(this.tmp, this.final);
    await fsyncDir(join(this.final, '..'));
    const info: SnapshotInfo = { id: this.id, meta: this.meta, dataBytes: this.dataBytes };
    await this.store.committed(info);
    return info;
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.handle.close();
    await unlink(this.tmp);
  }
}

async function readInfo(path: string, id: number): Promise<SnapshotInfo> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size < HEADER_BYTES + TRAILER_BYTES) throw new SnapshotCorruptionError(path, 'too short');
    const header = new Uint8Array(HEADER_BYTES);
    await handle.read(header, 0, HEADER_BYTES, 0);
    const hv = new DataView(header.buffer);
    if (hv.getUint32(0, true) !== MAGIC) throw new SnapshotCorruptionError(path, 'bad magic');
    const metaLen = hv.getUint32(8, true);
    const trailer = new Uint8Array(TRAILER_BYTES);
    await handle.read(trailer, 0, TRAILER_BYTES, size - TRAILER_BYTES);
    const tv = new DataView(trailer.buffer);
    const dataBytes = Number(tv.getBigUint64(0, true));
    if (
      tv.getUint32(12, true) !== MAGIC ||
      HEADER_BYTES + metaLen + dataBytes + TRAILER_BYTES !== size
    ) {
      throw new SnapshotCorruptionError(path, 'trailer does not match the file size');
    }
    const meta = new Uint8Array(metaLen);
    await handle.read(meta, 0, metaLen, HEADER_BYTES);
    return { id, meta, dataBytes };
  } finally {
    await handle.close();
  }
}
