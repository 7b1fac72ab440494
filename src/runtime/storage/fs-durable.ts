/**
 * Small durable-filesystem helpers shared by the WAL, the snapshot store and the hard-state
 * store. On Linux a new or removed directory entry is durable only after an fsync of the
 * directory itself; a file's data only after fdatasync/fsync of the file.
 */
import { constants } from 'node:fs';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Files written in place (WAL segments, the hard-state slots) are opened O_DSYNC where the
 * platform has it: a write returns once its data is durable, as write + fdatasync would, but
 * in one trip to the thread pool instead of two, and that trip is most of the latency of a
 * small commit. Where O_DSYNC is missing, writers fdatasync after writing.
 */
export const SYNC_ON_WRITE = typeof constants.O_DSYNC === 'number';
const DSYNC = SYNC_ON_WRITE ? constants.O_DSYNC : 0;
/** Flags to open an existing file for durable positional writes. */
export const DURABLE_OPEN = constants.O_RDWR | DSYNC;
/** Flags to create a new file (failing if it exists) for durable positional writes. */
export const DURABLE_CREATE = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | DSYNC;

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `chunks` to `dir/name` so that after a crash the file is either absent or whole:
 * write to a temp name, fdatasync, rename over the target, fsync the directory.
 */
export async function writeFileAtomic(
  dir: string,
  name: string,
  chunks: Iterable<Uint8Array>,
): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const handle = await open(tmp, 'w');
  try {
    for (const chunk of chunks) await handle.write(chunk);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
}

/** Removes leftovers of interrupted atomic writes (`*.tmp`). */
export async function removeTempFiles(dir: string): Promise<void> {
  let removed = false;
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.tmp')) continue;
    await unlink(join(dir, name));
    removed = true;
  }
  if (removed) await fsyncDir(dir);
}
