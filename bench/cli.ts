/**
 * CLI start-up benchmark (not a test): wall time of whole `quorate` processes, as a user
 * at a shell sees it, for `quorate --help` and for `quorate kv get k` against a live local
 * 3-node cluster this script starts (and stops) on free ports in a temp dir.
 *
 *     npm run bench:cli                 # 20 runs each; prints medians, writes bench-results/cli.json
 *     npm run bench:cli -- --runs 50 --bin /path/to/quorate
 *
 * Two entry points are timed, run for run in turn so that both see the same machine (this
 * one is shared and noisy): this checkout's bin/quorate.mjs, which first checks that dist/
 * is newer than every source, and the layout an installed package has (the same bin, dist/
 * and node_modules, no src/), which runs dist/ at once. `--bin` replaces the first with
 * another entry point. `node -e 0` is timed beside them: Node's own start-up is the floor.
 * The goal is a median of at most 100 ms for both commands.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { libBuildIsStale } from '../scripts/lib-freshness.mjs';
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
if (libBuildIsStale()) {
  throw new Error(
    'dist/ is older than the sources: run `npm run build` first (a stale clone runs the sources through tsx)',
  );
}

/** Wall milliseconds of one run of `node ...args`; a failed run ends the benchmark. */
function timeNode(args: readonly string[]): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/** Each case's samples, taken in turn: run i of every case, then run i + 1 of every case. */
function timeInTurn(cases: Readonly<Record<string, readonly string[]>>): Record<string, number[]> {
  const samples: Record<string, number[]> = {};
  for (const [name, args] of Object.entries(cases)) {
    timeNode(args); // file-system caches, so every point sees the same warm machine
    samples[name] = [];
  }
  for (let i = 0; i < runs; i++) {
    for (const [name, args] of Object.entries(cases)) samples[name]?.push(timeNode(args));
  }
  return samples;
}

/** An installed package's layout: its bin, dist/ and dependencies, and no src/. */
function installedLayout(dir: string): string {
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(root, 'bin', 'quorate.mjs'), join(dir, 'bin', 'quorate.mjs'));
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'dist'), join(dir, 'dist'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'bin', 'quorate.mjs');
}

const dataDir = mkdtempSync(join(tmpdir(), 'quorate-bench-cli-'));
const packageDir = mkdtempSync(join(tmpdir(), 'quorate-bench-cli-pkg-'));
const portBase = await freePortRange(7);
const cluster = await startLocalCluster({ nodes: 3, dataDir, portBase });
try {
  const endpoints = cluster.endpoints().map((e) => e.clientUrl);
  await new QuorateClient({ endpoints, timeoutMs: 10_000 }).put('k', 'v');
  const installed = installedLayout(packageDir);
  const get = ['kv', 'get', 'k', '--endpoints', endpoints.join(',')];
  const samples = timeInTurn({
    nodeAlone: ['-e', '0'],
    help: [values.bin, '--help'],
    helpInstalled: [installed, '--help'],
    kvGet: [values.bin, ...get],
    kvGetInstalled: [installed, ...get],
  });
  const points = Object.fromEntries(
    Object.entries(samples).map(([name, ms]) => [name, { medianMs: median(ms), samplesMs: ms }]),
  );
  const result = { bin: values.bin, installed, runs, ...points };
  const label: Record<string, string> = {
    nodeAlone: 'node -e 0',
    help: 'quorate --help (clone)',
    helpInstalled: 'quorate --help (installed)',
    kvGet: 'quorate kv get k (clone)',
    kvGetInstalled: 'quorate kv get k (installed)',
  };
  for (const [name, p] of Object.entries(points)) {
    console.log(
      `${(label[name] ?? name).padEnd(30)} median ${p.medianMs.toFixed(1)} ms (${runs} runs)`,
    );
  }
  mkdirSync(join(root, 'bench-results'), { recursive: true });
  writeFileSync(join(root, 'bench-results', 'cli.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await cluster.stopAll();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(packageDir, { recursive: true, force: true });
}
