/**
 * Small durable-filesystem helpers shared by the WAL, the snapshot store and the hard-state
 * store. On Linux a new or removed directory entry is durable only after an fsync of the
 * directory itself; a file's data only after fdatasync/fsync of the file.
 */
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

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
