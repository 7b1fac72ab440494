import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  applyMerklePersist,
  initialMerkleDurable,
  type MerkleDurable,
  type MerklePersist,
} from '../gossip/antientropy/index.ts';
import { crc32c } from '../runtime/crc32c.ts';
import { filePacker } from '../runtime/msgpack.ts';
import { fsyncDir, writeFileAtomic } from '../runtime/storage/fs-durable.ts';

/**
 * The anti-entropy store's durable state in the agent's data directory: one append-only log,
 * `store-merkle.log`, of the core's persist items (a clock bound, an entry, a forgotten
 * tombstone), each record `[u32 payload length][u32 CRC32C of payload][MessagePack payload]`.
 * At open the records are replayed through the core's own fold (`applyMerklePersist`, the
 * reference meaning of each item, so this file re-derives no rule); the first record that is
 * short or fails its checksum ends the log (a torn tail of a crash mid-append) and the file
 * is cut there. Every batch is one write and one fdatasync, and the node host answers a
 * write only after it (Ready: persist before replies). When the log holds more than twice as
 * many records as the map has entries, the open rewrites it as one clock record and the
 * entries (write temp, fdatasync, rename, fsync dir), so a crash mid-compaction leaves the
 * old log or the new one.
 */
export const STORE_LOG = 'store-merkle.log';
const HEADER_BYTES = 8;
/** Longest record we accept when reading: the largest entry with room to spare. */
const RECORD_BYTES_MAX = 1024 * 1024;
const COMPACT_SLACK_RECORDS = 1_000;

/** MessagePack writes `undefined` as nil; the cores mean "absent" by undefined, never null. */
export function undefinedForNull(value: unknown): unknown {
  if (value === null) return undefined;
  if (value instanceof Uint8Array || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(undefinedForNull);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = undefinedForNull(v);
  }
  return out;
}

export function encodeRecord(item: MerklePersist): Uint8Array {
  const payload = filePacker.pack(item);
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length);
  view.setUint32(4, crc32c(payload));
  out.set(payload, HEADER_BYTES);
  return out;
}

export interface ReplayResult {
  readonly durable: MerkleDurable;
  readonly records: number;
  /** Bytes of the good prefix: anything after it is a torn or damaged tail. */
  readonly goodBytes: number;
}

/** Replays records from the start of `bytes` up to the first torn or damaged one. */
export function replay(bytes: Uint8Array): ReplayResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let durable = initialMerkleDurable();
  let at = 0;
  let records = 0;
  while (at + HEADER_BYTES <= bytes.length) {
    const length = view.getUint32(at);
    const crc = view.getUint32(at + 4);
    const end = at + HEADER_BYTES + length;
    if (length > RECORD_BYTES_MAX || end > bytes.length) break;
    const payload = bytes.subarray(at + HEADER_BYTES, end);
    if (crc32c(payload) !== crc) break;
    let item: MerklePersist;
    try {
      item = undefinedForNull(filePacker.unpack(payload)) as MerklePersist;
    } catch {
      break;
    }
    durable = applyMerklePersist(durable, item);
    records += 1;
    at = end;
  }
  return { durable, records, goodBytes: at };
}

export class StoreLog {
  private constructor(
    private readonly dir: string,
    private readonly handle: import('node:fs/promises').FileHandle,
    private records: number,
    private bytes: number,
  ) {}

  /** Opens (creating) the log in `dir`, replays it, cuts a torn tail, compacts if due. */
  static async open(dir: string): Promise<{ log: StoreLog; durable: MerkleDurable; cut: number }> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, STORE_LOG);
    let bytes: Uint8Array = new Uint8Array(0);
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const r = replay(bytes);
    const cut = bytes.length - r.goodBytes;
    let records = r.records;
    if (records > 2 * r.durable.entries.size + COMPACT_SLACK_RECORDS) {
      const items: MerklePersist[] = [{ type: 'clock', wallBound: r.durable.clockBound }];
      for (const entry of r.durable.entries.values()) items.push({ type: 'entry', entry });
      await writeFileAtomic(dir, STORE_LOG, items.map(encodeRecord));
      records = items.length;
    }
    const handle = await open(path, 'a+');
    const size = (await stat(path)).size;
    if (cut > 0 && records === r.records) {
      await handle.truncate(r.goodBytes);
      await handle.datasync();
    }
    if (bytes.length === 0) await fsyncDir(dir);
    const log = new StoreLog(dir, handle, records, cut > 0 ? r.goodBytes : size);
    return { log, durable: r.durable, cut };
  }

  get recordCount(): number {
    return this.records;
  }

  get byteCount(): number {
    return this.bytes;
  }

  get directory(): string {
    return this.dir;
  }

  /** Appends a batch with one write and one fdatasync; resolves once it is durable. */
  async append(items: readonly MerklePersist[]): Promise<void> {
    if (items.length === 0) return;
    const chunks = items.map(encodeRecord);
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const buf = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      buf.set(c, at);
      at += c.length;
    }
    await this.handle.write(buf, 0, buf.length);
    await this.handle.datasync();
    this.records += items.length;
    this.bytes += total;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
