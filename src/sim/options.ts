import { assert } from '../kernel/assert.ts';
import type { ScheduledAction } from './nemesis.ts';
import { defaultLatency, type LatencyModel } from './network.ts';
import type { TraceSink } from './trace.ts';

/** Everything that fixes a run. Two runs with equal options produce identical traces. */
export interface SimOptions {
  readonly seed: number;
  readonly nodes: number;
  /** Concurrent simulated clients. */
  readonly clients: number;
  /** Client operations invoked during the safety phase. */
  readonly ops: number;
  /** Enabled fault kinds for the random nemesis (see `parseFaults`). */
  readonly faults: readonly string[];
  /** 0..1: how often and how hard the random nemesis strikes. */
  readonly intensity: number;
  /** A scripted scenario; when given it replaces the random nemesis. */
  readonly scenario?: readonly ScheduledAction[];
  readonly latency: LatencyModel;
  /** Loss on client <-> node links, independent of the nemesis. */
  readonly clientLoss: number;
  /** Each fsync takes a uniform time in [fsyncMinMs, fsyncMaxMs]. */
  readonly fsyncMinMs: number;
  readonly fsyncMaxMs: number;
  /** Largest initial clock offset between nodes when the `skew` fault is enabled. */
  readonly skewMaxMs: number;
  /** The safety phase ends when the workload has invoked every op, or at this time. */
  readonly safetyMsMax: number;
  /** After healing, everything pending must finish within this bound. */
  readonly livenessMs: number;
  /** Bound on pending events (messages in flight, timers). */
  readonly eventsMax: number;
  /** Messages a paused node buffers before the network drops more. */
  readonly pausedInboxMax: number;
  /** Steps at one simulated instant before the run is declared a livelock. */
  readonly stepsPerInstantMax: number;
  /** Whether healing restarts crashed nodes (default true); false keeps them down for good. */
  readonly restartAtHeal?: boolean;
  /** JSON Lines trace output; tracing costs nothing when absent. */
  readonly trace?: TraceSink;
}

export const defaultSimOptions: SimOptions = {
  seed: 1,
  nodes: 3,
  clients: 5,
  ops: 200,
  faults: [],
  intensity: 0.5,
  latency: defaultLatency,
  clientLoss: 0,
  fsyncMinMs: 0.1,
  fsyncMaxMs: 2,
  skewMaxMs: 50,
  safetyMsMax: 60_000,
  livenessMs: 10_000,
  eventsMax: 1 << 22,
  pausedInboxMax: 10_000,
  stepsPerInstantMax: 100_000,
};

export function validateOptions(o: SimOptions): void {
  assert(Number.isSafeInteger(o.seed) && o.seed >= 0, 'seed must be a safe non-negative integer');
  assert(Number.isInteger(o.nodes) && o.nodes >= 1, 'nodes must be >= 1');
  assert(Number.isInteger(o.clients) && o.clients >= 0, 'clients must be >= 0');
  assert(Number.isInteger(o.ops) && o.ops >= 0, 'ops must be >= 0');
  assert(o.intensity >= 0 && o.intensity <= 1, 'intensity must be in [0, 1]');
  assert(o.clientLoss >= 0 && o.clientLoss < 1, 'clientLoss must be in [0, 1)');
  assert(o.fsyncMinMs >= 0 && o.fsyncMaxMs >= o.fsyncMinMs, 'need 0 <= fsyncMinMs <= fsyncMaxMs');
  assert(o.safetyMsMax > 0 && o.livenessMs > 0, 'phase bounds must be positive');
  assert(o.eventsMax >= 16 && o.pausedInboxMax >= 0, 'queue bounds too small');
  assert(o.stepsPerInstantMax >= 1, 'stepsPerInstantMax must be >= 1');
}

/**
 * The one-line command that replays a run. Only options the CLI exposes can be replayed
 * this way; a run that set others (a scripted scenario, a custom latency) says so.
 */
export function replayCommand(protocol: string, o: SimOptions): string {
  const faults = o.faults.length === 0 ? 'none' : o.faults.join(',');
  const parts = [
    `npx quorate sim ${protocol}`,
    `--nodes ${o.nodes}`,
    `--seed ${o.seed}`,
    `--ops ${o.ops}`,
    `--clients ${o.clients}`,
    `--faults ${faults}`,
  ];
  if (o.intensity !== defaultSimOptions.intensity) parts.push(`--intensity ${o.intensity}`);
  const custom = o.scenario !== undefined ? ' (plus the scripted scenario)' : '';
  return parts.join(' ') + custom;
}
