/**
 * Child process for the kill -9 test (wal-crash.test.ts): opens the WAL in argv[2] and appends
 * from several concurrent writers forever, printing "ack <seq> <payload>" for each record
 * only after its append resolved (it is durable). The parent kills it at a random moment.
 */
import { FileWal } from './file-wal.ts';

const dir = process.argv[2];
const round = process.argv[3] ?? '0';
if (dir === undefined) throw new Error('usage: wal-crash-child.ts <dir> <round>');

const wal = await FileWal.open({ dir, segmentBytesMax: 16 * 1024, recordBytesMax: 1024 });
process.stdout.write(`ready ${wal.nextSeq()}\n`);
const encoder = new TextEncoder();

async function writer(id: number): Promise<void> {
  for (let i = 0; ; i++) {
    const texts = [`r${round}-w${id}-${i}-a`, `r${round}-w${id}-${i}-b`.padEnd(20 + (i % 50), '.')];
    const first = await wal.append(texts.map((t) => ({ type: id, payload: encoder.encode(t) })));
    process.stdout.write(texts.map((t, k) => `ack ${first + k} ${t}\n`).join(''));
  }
}

await Promise.all(Array.from({ length: 8 }, (_, id) => writer(id)));
