/**
 * WAL group-commit throughput: records/s and fdatasyncs/s with 1, 16 and 64 concurrent
 * appenders of 100-byte records, each appender awaiting its append before the next (as a
 * host awaiting durability before replying does). Run: npm run bench:wal [-- seconds]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FileWal } from '../src/runtime/storage/file-wal.ts';

const seconds = Number(process.argv[2] ?? 2);
const payload = new Uint8Array(100).fill(7);

async function run(appenders: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'quorate-bench-wal-'));
  let fsyncs = 0;
  let fsyncMs = 0;
  const wal = await FileWal.open({
    dir,
    metrics: {
      fsync: (ms) => {
        fsyncs++;
        fsyncMs += ms;
      },
    },
  });
  let records = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: appenders }, async () => {
      while (performance.now() < end) {
        await wal.append([{ type: 1, payload }]);
        records++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await wal.close();
  await rm(dir, { recursive: true, force: true });
  console.log(
    `${String(appenders).padStart(3)} appenders: ${Math.round(records / elapsed)
      .toString()
      .padStart(7)} records/s, ${Math.round(fsyncs / elapsed)
      .toString()
      .padStart(
        5,
      )} fsyncs/s, ${(records / fsyncs).toFixed(1).padStart(5)} records/fsync, mean fsync ${(fsyncMs / fsyncs).toFixed(2)} ms`,
  );
}

for (const n of [1, 16, 64]) await run(n);
