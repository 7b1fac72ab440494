/**
 * CLI start-up benchmark (not a test): wall time of whole `quorate` processes, as a user
 * at a shell sees it, for `quorate --help` and for `quorate kv get k` against a live local
 * 3-node cluster this script starts (and stops) on free ports in a temp dir.
 *
 *     npm run bench:cli                 # 20 runs each; prints medians, writes bench-results/cli.json
 *     npm run bench:cli -- --runs 50 --bin /path/to/quorate
 *
 * `--bin` times another entry point (an installed package's bin); the default is this
 * checkout's bin/quorate.mjs. The goal is a median of at most 100 ms for both.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startLocalCluster } from '../src/cli/commands/up.ts';
import { QuorateClient } from '../src/client/client.ts';
import { freePortRange } from '../test/e2e/ports.ts';
import { median } from './kv/stats.ts';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    bin: { type: 'string', default: join(root, 'bin', 'quorate.mjs') },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new Error('--runs: 1..1000');

/** Wall milliseconds of each of `runs` runs of `node ...args`, after one warm-up run. */
function timeNode(args: readonly string[]): number[] {
  const run = () => {
    const started = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (r.status !== 0)
      throw new Error(`quorate ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return ms;
  };
  run(); // file-system caches, so every point sees the same warm machine
  return Array.from({ length: runs }, run);
}

const time = (args: readonly string[]) => timeNode([values.bin, ...args]);

const dataDir = mkdtempSync(join(tmpdir(), 'quorate-bench-cli-'));
const portBase = await freePortRange(7);
const cluster = await startLocalCluster({ nodes: 3, dataDir, portBase });
try {
  const endpoints = cluster.endpoints().map((e) => e.clientUrl);
  await new QuorateClient({ endpoints, timeoutMs: 10_000 }).put('k', 'v');
  // Node's own start-up on this machine, now: the floor under both figures.
  const bare = timeNode(['-e', '0']);
  const help = time(['--help']);
  const get = time(['kv', 'get', 'k', '--endpoints', endpoints.join(',')]);
  const result = {
    bin: values.bin,
    runs,
    nodeAlone: { medianMs: median(bare), samplesMs: bare },
    help: { medianMs: median(help), samplesMs: help },
    kvGet: { medianMs: median(get), samplesMs: get },
  };
  console.log(
    `node -e 0          median ${result.nodeAlone.medianMs.toFixed(1)} ms (${runs} runs)`,
  );
  console.log(`quorate --help     median ${result.help.medianMs.toFixed(1)} ms (${runs} runs)`);
  console.log(`quorate kv get k   median ${result.kvGet.medianMs.toFixed(1)} ms (${runs} runs)`);
  mkdirSync(join(root, 'bench-results'), { recursive: true });
  writeFileSync(join(root, 'bench-results', 'cli.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await cluster.stopAll();
  rmSync(dataDir, { recursive: true, force: true });
}
