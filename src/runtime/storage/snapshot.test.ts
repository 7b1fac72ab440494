import { mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SnapshotStore } from './snapshot.ts';
import {
  FileSnapshotStore,
  MemorySnapshotStore,
  SnapshotCorruptionError,
  writeSnapshot,
} from './snapshot.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorate-snap-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const meta = (s: string) => new TextEncoder().encode(s);
const pattern = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

async function collect(
  chunks: AsyncIterable<Uint8Array>,
): Promise<{ sizes: number[]; data: Uint8Array }> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  const data = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { sizes: parts.map((p) => p.length), data };
}

const implementations: [string, () => Promise<SnapshotStore>][] = [
  ['MemorySnapshotStore', () => Promise.resolve(new MemorySnapshotStore())],
  ['FileSnapshotStore', () => FileSnapshotStore.open(dir)],
];

describe.each(implementations)('SnapshotStore conformance: %s', (_name, make) => {
  it('stores streamed chunks and reads them back in chunks no larger than asked', async () => {
    const store = await make();
    expect(store.latest()).toBeUndefined();
    const info = await writeSnapshot(store, meta('index=10'), [pattern(1000, 1), pattern(2500, 2)]);
    expect(info.dataBytes).toBe(3500);
    expect(new TextDecoder().decode(store.latest()?.meta)).toBe('index=10');
    const { sizes, data } = await collect(store.read(info.id, 1024));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024);
    expect(data).toEqual(Uint8Array.from([...pattern(1000, 1), ...pattern(2500, 2)]));
  });

  it('keeps the previous snapshot as latest until a new one commits, and drops aborted ones', async () => {
    const store = await make();
    const first = await writeSnapshot(store, meta('a'), [pattern(10, 0)]);
    const writer = await store.create(meta('b'));
    await writer.write(pattern(10, 1));
    expect(store.latest()?.id).toBe(first.id);
    await writer.abort();
    expect(store.latest()?.id).toBe(first.id);
    const second = await writeSnapshot(store, meta('c'), []);
    expect(second.id).toBeGreaterThan(first.id);
    expect(store.latest()).toEqual(second);
    expect((await collect(store.read(second.id))).data.length).toBe(0);
  });
});

describe('FileSnapshotStore', () => {
  it('finds the latest snapshot after reopening and keeps only the retained ones', async () => {
    const store = await FileSnapshotStore.open(dir, 2);
    for (let i = 0; i < 4; i++) await writeSnapshot(store, meta(`s${i}`), [pattern(100, i)]);
    expect((await readdir(dir)).length).toBe(2);
    const reopened = await FileSnapshotStore.open(dir, 2);
    expect(new TextDecoder().decode(reopened.latest()?.meta)).toBe('s3');
    expect((await collect(reopened.read(4))).data).toEqual(pattern(100, 3));
  });

  it('ignores a snapshot whose writer crashed before commit', async () => {
    const store = await FileSnapshotStore.open(dir);
    await writeSnapshot(store, meta('done'), [pattern(10, 0)]);
    await writeFile(join(dir, '0000000000000002.snap.tmp'), pattern(50, 9));
    const reopened = await FileSnapshotStore.open(dir);
    expect(reopened.latest()?.id).toBe(1);
    expect(await readdir(dir)).toEqual(['0000000000000001.snap']);
  });

  it('refuses to open on a damaged newest snapshot, naming the file', async () => {
    const store = await FileSnapshotStore.open(dir);
    await writeSnapshot(store, meta('m'), [pattern(5000, 0)]);
    const path = join(dir, '0000000000000001.snap');
    const file = await open(path, 'r+');
    await file.write(Uint8Array.of(0xaa), 0, 1, 2000);
    await file.close();
    const error = await FileSnapshotStore.open(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotCorruptionError);
    expect(String(error)).toContain(path);
  });
});
