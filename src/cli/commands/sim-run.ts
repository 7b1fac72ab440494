import { closeSync, openSync, writeSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { parseFaults } from '../../sim/nemesis.ts';
import { type AnySimProtocol, findProtocol, protocols } from '../../sim/protocols.ts';
import { type RunResult, runSimulation } from '../../sim/run.ts';
import { EXIT, UsageError } from '../program.ts';
import { type SimFlags, seedMax } from './sim.ts';

/** What `quorate sim` runs once its flags are parsed (sim.ts registers the command). */

/** Buffered line writer for trace and history files (one write per many lines). */
class LineFile {
  private readonly fd: number;
  private lines: string[] = [];

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'w');
    } catch (err) {
      throw new UsageError(`cannot write ${path}: ${(err as Error).message}`);
    }
  }

  readonly write = (line: string): void => {
    this.lines.push(line);
    if (this.lines.length >= 4096) this.flush();
  };

  flush(): void {
    if (this.lines.length === 0) return;
    writeSync(this.fd, `${this.lines.join('\n')}\n`);
    this.lines = [];
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

function exitCodeOf(results: readonly RunResult[]): number {
  if (results.some((r) => r.verdict === 'violation')) return EXIT.violation;
  if (results.some((r) => r.verdict === 'unknown')) return EXIT.unknown;
  return EXIT.ok;
}

function describe(r: RunResult): string {
  const s = r.stats;
  const head = `${r.protocol} seed ${r.seed}: ${r.verdict}`;
  const stats = `${s.delivered} messages delivered, ${s.dropped} dropped, ${r.history.length} history events, ${s.simulatedMs.toFixed(0)} simulated ms`;
  if (r.verdict === 'pass') return `${head} (${r.message}; ${stats})\n`;
  return `${head}: ${r.message}\n  replay: ${r.replay}\n`;
}

function jsonOf(r: RunResult) {
  return {
    protocol: r.protocol,
    seed: r.seed,
    verdict: r.verdict,
    message: r.message,
    replay: r.replay,
    stats: r.stats,
  };
}

function runOne(protocol: AnySimProtocol, flags: SimFlags, faults: string[], seed: number) {
  const trace = flags.trace === undefined ? undefined : new LineFile(flags.trace);
  const history = flags.history === undefined ? undefined : new LineFile(flags.history);
  let result: RunResult;
  try {
    result = runSimulation(protocol, {
      seed,
      nodes: flags.nodes ?? protocol.defaultNodes,
      ops: flags.ops,
      clients: flags.clients,
      faults,
      intensity: flags.intensity,
      ...(trace === undefined ? {} : { trace: trace.write }),
    });
    if (history !== undefined) for (const e of result.history) history.write(JSON.stringify(e));
  } finally {
    trace?.close();
    history?.close();
  }
  process.stdout.write(flags.json ? `${JSON.stringify(jsonOf(result))}\n` : describe(result));
  return exitCodeOf([result]);
}

function runMany(
  protocol: AnySimProtocol,
  flags: SimFlags,
  faults: string[],
  first: number,
  count: number,
) {
  const bar = process.stderr.isTTY
    ? new SingleBar({
        format: 'sim {bar} {value}/{total} seeds, {failed} failed',
        stream: process.stderr,
      })
    : undefined;
  bar?.start(count, 0, { failed: 0 });
  const results: RunResult[] = [];
  let failed = 0;
  for (let i = 0; i < count; i++) {
    const r = runSimulation(protocol, {
      seed: (first + i) % (seedMax + 1),
      nodes: flags.nodes ?? protocol.defaultNodes,
      ops: flags.ops,
      clients: flags.clients,
      faults,
      intensity: flags.intensity,
    });
    if (r.verdict !== 'pass') failed++;
    results.push(r);
    bar?.update(i + 1, { failed });
  }
  bar?.stop();
  const passed = results.filter((r) => r.verdict === 'pass').length;
  // Every failing seed, so a soak's failures can each be replayed (bounded for the screen).
  const failedSeeds = results.filter((r) => r.verdict !== 'pass').map((r) => r.seed);
  const shownSeedsMax = 100;
  const firstBad =
    results.find((r) => r.verdict === 'violation') ?? results.find((r) => r.verdict !== 'pass');
  if (flags.json) {
    const summary = {
      protocol: protocol.name,
      runs: count,
      passed,
      failed: count - passed,
      failedSeeds: failedSeeds.slice(0, shownSeedsMax),
    };
    const worst = firstBad === undefined ? {} : { firstFailure: jsonOf(firstBad) };
    process.stdout.write(`${JSON.stringify({ ...summary, ...worst })}\n`);
  } else {
    process.stdout.write(
      `${protocol.name}: ${count} seeds from ${first}: ${passed} passed, ${count - passed} failed\n`,
    );
    if (failedSeeds.length > 0) {
      const more = failedSeeds.length > shownSeedsMax ? ' ...' : '';
      process.stdout.write(
        `failed seeds: ${failedSeeds.slice(0, shownSeedsMax).join(' ')}${more}\n`,
      );
    }
    if (firstBad !== undefined) process.stdout.write(`first failure: ${describe(firstBad)}`);
  }
  return exitCodeOf(results);
}

export function run(name: string, flags: SimFlags): number {
  const protocol = findProtocol(name);
  if (protocol === undefined) {
    throw new UsageError(
      `unknown protocol '${name}': choose from ${[...protocols.keys()].join(', ')}`,
    );
  }
  const parsed = parseFaults(
    flags.faults,
    (protocol.faults ?? []).map((f) => f.name),
  );
  if (!parsed.ok) throw new UsageError(`--faults: ${parsed.error}`);
  if (flags.seeds !== undefined && (flags.trace !== undefined || flags.history !== undefined)) {
    throw new UsageError('--trace and --history record one run: use --seed, not --seeds');
  }
  let seed = flags.seed;
  // A sweep is a fixed set of seeds (1..k) unless told otherwise, so `--seeds 300` in a test
  // suite checks the same runs every time; explore new ground with an explicit --seed.
  if (seed === undefined && flags.seeds !== undefined) seed = 1;
  if (seed === undefined) {
    // The only nondeterminism of a run, and it is printed so the run can be replayed.
    seed = Date.now() % (seedMax + 1);
    process.stderr.write(`seed ${seed}\n`);
  }
  if (flags.seeds !== undefined) return runMany(protocol, flags, parsed.faults, seed, flags.seeds);
  return runOne(protocol, flags, parsed.faults, seed);
}
