import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileWal } from './file-wal.ts';
import { readAll } from './wal.cases.ts';

const repoRoot = join(import.meta.dirname, '../../..');
const child = join(import.meta.dirname, 'wal-crash-child.ts');

/** Runs the child until it has acknowledged something, then kill -9 after `delayMs`. */
function runAndKill(dir: string, round: number, delayMs: number): Promise<Map<number, string>> {
  return new Promise((resolve, reject) => {
    const acked = new Map<number, string>();
    // Node itself with the tsx loader, not the tsx wrapper: SIGKILL must hit the writer.
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dir, String(round)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    let stderr = '';
    let armed = false;
    const giveUp = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    proc.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^ack (\d+) (.*)$/.exec(line);
        if (m) acked.set(Number(m[1]), m[2] as string);
      }
      if (!armed && acked.size > 0) {
        armed = true;
        setTimeout(() => proc.kill('SIGKILL'), delayMs);
      }
    });
    proc.on('exit', (_code, signal) => {
      clearTimeout(giveUp);
      if (signal === 'SIGKILL' && acked.size > 0) resolve(acked);
      else reject(new Error(`child ended without acks (signal ${signal}): ${stderr}`));
    });
  });
}

describe('FileWal under kill -9', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quorate-wal-crash-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // kill -9 keeps the page cache, so this checks that acks follow writes and that recovery
  // of whatever the kill interrupted keeps every acknowledged record; power loss is not
  // simulated. Each round reopens the log the previous round left behind.
  it('never loses an acknowledged record, across repeated kills at random moments', async () => {
    const acked = new Map<number, string>();
    const delays = [5, 60, 0, 25];
    for (const [round, delay] of delays.entries()) {
      const roundAcks = await runAndKill(dir, round, delay + Math.floor(Math.random() * 30));
      for (const [seq, text] of roundAcks) acked.set(seq, text);
      const wal = await FileWal.open({ dir, segmentBytesMax: 16 * 1024, recordBytesMax: 1024 });
      const present = new Map<number, string>();
      for (const r of await readAll(wal)) present.set(r.seq, new TextDecoder().decode(r.payload));
      await wal.close();
      const missing = [...acked].filter(([seq, text]) => present.get(seq) !== text);
      expect(missing, `round ${round}: acknowledged but lost or changed`).toEqual([]);
      const seqs = [...present.keys()];
      expect(seqs).toEqual(seqs.map((_, i) => 1 + i));
    }
    expect(acked.size).toBeGreaterThan(delays.length);
  });
});
