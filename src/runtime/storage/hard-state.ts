/**
 * Hard state: the few bytes a protocol must never forget or roll back (Raft's term and vote,
 * a Paxos acceptor's promised ballot). Opaque bytes here, so any protocol can use it.
 *
 * Kept apart from the WAL (see wal.ts for why). The file holds two fixed slots written
 * alternately, each with a version and a CRC32C: a save overwrites only the older slot and
 * fdatasyncs once, so a torn save leaves the other slot, the previous state, intact. A
 * rename-based write would need two fsyncs (file and directory) per save.
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../../kernel/assert.ts';
import { crc32c } from '../crc32c.ts';
import { DURABLE_OPEN, fsyncDir, SYNC_ON_WRITE } from './fs-durable.ts';

export interface HardStateStore {
  /** The last saved state, or undefined if none was ever saved. */
  load(): Uint8Array | undefined;
  /** Replaces the state; resolves once it is durable. Saves run one at a time, in order. */
  save(state: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export class MemoryHardStateStore implements HardStateStore {
  private state: Uint8Array | undefined;

  constructor(private readonly stateBytesMax = 4096) {}

  load(): Uint8Array | undefined {
    return this.state?.slice();
  }

  save(state: Uint8Array): Promise<void> {
    assert(state.length <= this.stateBytesMax, `hard state of ${state.length} B too big`);
    this.state = state.slice();
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** slot = version u64 | length u32 | crc32c(version, length, state) u32 | state */
const SLOT_HEADER_BYTES = 16;
const FILE_NAME = 'hardstate';

export class FileHardStateStore implements HardStateStore {
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly handle: FileHandle,
    private readonly slotBytes: number,
    private version: number,
    private state: Uint8Array | undefined,
  ) {}

  static async open(dir: string, stateBytesMax = 4096): Promise<FileHardStateStore> {
    assert(Number.isSafeInteger(stateBytesMax) && stateBytesMax > 0, 'stateBytesMax must be > 0');
    await mkdir(dir, { recursive: true });
    const path = join(dir, FILE_NAME);
    const handle = await open(path, 'a+').then(async (h) => {
      await h.close(); // 'a+' creates it; positional writes need read-write without append
      return open(path, DURABLE_OPEN);
    });
    await fsyncDir(dir);
    const slotBytes = SLOT_HEADER_BYTES + stateBytesMax;
    const buf = new Uint8Array(2 * slotBytes);
    await handle.read(buf, 0, buf.length, 0);
    const slots = [decodeSlot(buf.subarray(0, slotBytes)), decodeSlot(buf.subarray(slotBytes))];
    const best = slots.reduce((a, b) => ((b?.version ?? -1) > (a?.version ?? -1) ? b : a));
    return new FileHardStateStore(handle, slotBytes, best?.version ?? 0, best?.state);
  }

  load(): Uint8Array | undefined {
    return this.state?.slice();
  }

  save(state: Uint8Array): Promise<void> {
    assert(
      state.length <= this.slotBytes - SLOT_HEADER_BYTES,
      `hard state of ${state.length} B too big`,
    );
    const copy = state.slice();
    this.state = copy;
    this.version += 1;
    const version = this.version;
    const run = this.chain.then(async () => {
      const slot = encodeSlot(version, copy);
      await this.handle.write(slot, 0, slot.length, (version % 2) * this.slotBytes);
      if (!SYNC_ON_WRITE) await this.handle.datasync();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.handle.close();
  }
}

function encodeSlot(version: number, state: Uint8Array): Uint8Array {
  const slot = new Uint8Array(SLOT_HEADER_BYTES + state.length);
  const view = new DataView(slot.buffer);
  view.setBigUint64(0, BigInt(version), true);
  view.setUint32(8, state.length, true);
  slot.set(state, SLOT_HEADER_BYTES);
  view.setUint32(12, crc32c(slot.subarray(SLOT_HEADER_BYTES), crc32c(slot.subarray(0, 12))), true);
  return slot;
}

function decodeSlot(slot: Uint8Array): { version: number; state: Uint8Array } | undefined {
  const view = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
  const version = Number(view.getBigUint64(0, true));
  const len = view.getUint32(8, true);
  if (version === 0 || SLOT_HEADER_BYTES + len > slot.length) return undefined;
  const state = slot.subarray(SLOT_HEADER_BYTES, SLOT_HEADER_BYTES + len);
  if (view.getUint32(12, true) !== crc32c(state, crc32c(slot.subarray(0, 12)))) return undefined;
  return { version, state: state.slice() };
}
