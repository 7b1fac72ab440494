import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getVia, putVia, startTestCluster, type TestCluster, waitForLeader } from './harness.ts';

/** Recovery from a damaged WAL on a single-node cluster (its only copy of the data). */
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster(1);
}, 90_000);

afterAll(async () => {
  await t?.cleanup();
});

async function onlySegment(): Promise<string> {
  const dir = join(t.cluster.nodes[0]?.dataDir as string, 'wal');
  const segments = (await readdir(dir)).filter((f) => f.endsWith('.wal')).sort();
  expect(segments.length).toBeGreaterThan(0);
  return join(dir, segments.at(-1) as string);
}

describe('WAL recovery', () => {
  it('cuts off a torn last record and keeps every acknowledged write', async () => {
    const c = t.cluster;
    await waitForLeader(c);
    const url = c.nodes[0]?.clientUrl as string;
    for (let i = 0; i < 20; i++) expect((await putVia(url, `torn-${i}`, `v${i}`)).status).toBe(200);
    await c.kill(1, 'SIGKILL');
    // A record header promising 200 payload bytes, followed by only a few: a torn write.
    const segment = await onlySegment();
    const sizeBefore = (await stat(segment)).size;
    await appendFile(segment, Uint8Array.from([200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]));
    await c.start(1);
    await waitForLeader(c);
    for (let i = 0; i < 20; i++) expect(await getVia(url, `torn-${i}`)).toBe(`v${i}`);
    expect((await putVia(url, 'after-torn', 'ok')).status).toBe(200);
    expect((await stat(segment)).size).toBeGreaterThan(sizeBefore);
  });

  it('refuses to start on a corrupt record before the tail, naming file and offset', async () => {
    const c = t.cluster;
    await c.stop(1);
    const segment = await onlySegment();
    const bytes = await readFile(segment);
    // Flip a byte inside the first record's payload (segment header 20 B, record header 9 B).
    const at = 20 + 9 + 2;
    bytes[at] = (bytes[at] as number) ^ 0xff;
    await writeFile(segment, bytes);
    await expect(c.start(1)).rejects.toThrow(/exited with 1/);
    const log = await readFile(c.nodes[0]?.logFile as string, 'utf8');
    expect(log).toMatch(
      /refusing to start: WAL corrupt in .*\.wal at byte offset 20: record checksum mismatch/,
    );
  });
});
