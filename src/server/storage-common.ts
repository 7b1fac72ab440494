import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeId } from '../kernel/ids.ts';
import { FileWal } from '../runtime/storage/file-wal.ts';
import {
  type SnapshotInfo,
  type SnapshotStore,
  writeSnapshot,
} from '../runtime/storage/snapshot.ts';
import type { WalMetrics } from '../runtime/storage/wal.ts';

/** The disk layout both real nodes share; the protocol's storage decides what goes in it. */
const IDENTITY_FILE = 'node.json';
/** Chunk size when reading a snapshot back at startup and when writing one. */
const SNAPSHOT_IO_BYTES = 1024 * 1024;

export interface DataDirectoryOwner {
  readonly id: NodeId;
  /**
   * The protocol recorded in the identity file and required of it on later opens. Raft
   * directories predate the field, so Raft records none and a missing one reads as 'raft'.
   */
  readonly protocol?: 'multipaxos';
}

/**
 * Records the owner of a data directory on first use; refuses a directory of another node
 * (or, for a protocol that records itself, of another protocol). Returns whether the
 * directory was new, a first boot.
 */
export async function claimDirectory(dir: string, owner: DataDirectoryOwner): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, IDENTITY_FILE);
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text === undefined) {
    await writeFile(path, `${JSON.stringify(owner)}\n`, { mode: 0o600 });
    return true;
  }
  const found = JSON.parse(text) as { id?: unknown; protocol?: unknown };
  if (found.id !== owner.id) {
    throw new Error(
      `data directory ${dir} belongs to node ${String(found.id)}, not node ${owner.id}`,
    );
  }
  if (owner.protocol !== undefined && found.protocol !== owner.protocol) {
    throw new Error(`data directory ${dir} holds a ${String(found.protocol ?? 'raft')} node`);
  }
  return false;
}

export interface WalPlacement {
  readonly walMetrics?: WalMetrics;
  readonly segmentBytesMax?: number;
  /** Largest WAL record; segments must hold one. Tests lower both to make segments roll. */
  readonly recordBytesMax?: number;
}

/** Opens `<dir>/wal`, whose first record of a brand-new log has sequence number 1. */
export function openWal(dir: string, options: WalPlacement): Promise<FileWal> {
  return FileWal.open({
    dir: join(dir, 'wal'),
    initialSeq: 1,
    ...(options.walMetrics === undefined ? {} : { metrics: options.walMetrics }),
    ...(options.segmentBytesMax === undefined ? {} : { segmentBytesMax: options.segmentBytesMax }),
    ...(options.recordBytesMax === undefined ? {} : { recordBytesMax: options.recordBytesMax }),
  });
}

/** Reads a stored snapshot's data back whole, in bounded chunks. */
export async function readSnapshotData(
  store: SnapshotStore,
  info: SnapshotInfo,
): Promise<Uint8Array> {
  const data = new Uint8Array(info.dataBytes);
  let at = 0;
  for await (const chunk of store.read(info.id, SNAPSHOT_IO_BYTES)) {
    data.set(chunk, at);
    at += chunk.length;
  }
  return data;
}

/** Stores a snapshot atomically, writing its data in bounded chunks. */
export async function saveSnapshotData(
  store: SnapshotStore,
  meta: Uint8Array,
  data: Uint8Array,
): Promise<void> {
  await writeSnapshot(store, meta, chunksOf(data));
}

function* chunksOf(data: Uint8Array): Iterable<Uint8Array> {
  for (let at = 0; at < data.length; at += SNAPSHOT_IO_BYTES) {
    yield data.subarray(at, Math.min(data.length, at + SNAPSHOT_IO_BYTES));
  }
}
