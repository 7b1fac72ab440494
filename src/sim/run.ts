import type { HistoryEvent } from '../check/history.ts';
import type { CoreTypes } from '../kernel/core.ts';
import { defaultSimOptions, replayCommand, type SimOptions } from './options.ts';
import type { SimProtocol } from './protocol.ts';
import { type SimStats, Simulator, type Verdict } from './simulator.ts';

export interface RunResult {
  readonly protocol: string;
  readonly seed: number;
  readonly verdict: Verdict;
  /** The violation, the unknown's reason, or a summary of what passed. */
  readonly message: string;
  /** A one-line command that reproduces this run. */
  readonly replay: string;
  readonly stats: SimStats;
  readonly history: readonly HistoryEvent[];
}

/**
 * Runs one simulation: safety phase with faults and workload, heal, liveness phase, end
 * checks. Options not given take `defaultSimOptions`; the protocol's `defaultNodes` is used
 * when `nodes` is absent. Same options, same result and same trace, byte for byte.
 */
export function runSimulation<T extends CoreTypes, Durable>(
  protocol: SimProtocol<T, Durable>,
  options: Partial<SimOptions> = {},
): RunResult {
  const full: SimOptions = {
    ...defaultSimOptions,
    nodes: protocol.defaultNodes,
    ...protocol.simDefaults,
    ...options,
  };
  const sim = new Simulator(protocol, full);
  const finding = sim.run();
  return {
    protocol: protocol.name,
    seed: full.seed,
    verdict: finding.verdict,
    message: finding.message,
    replay: replayCommand(protocol.name, full),
    stats: sim.stats,
    history: sim.history,
  };
}
