/**
 * The deterministic simulator: one seed fixes a whole run of N pure cores over a faulty
 * network (latency, loss, duplication, reordering, partitions, one-way cuts, clogs), with
 * crashes that keep exactly what the disk acknowledged, pauses, clock skew and drift, a
 * random or scripted nemesis, and a client workload whose history is checked at the end.
 *
 *     const result = runSimulation(primaryBackup, { seed: 7, faults: ['partition'] });
 *     if (result.verdict === 'violation') console.log(result.message, result.replay);
 */

/** The interactive, steppable host behind the browser playground. */
export type {
  Caption,
  ClientRequest,
  Flight,
  NodeState,
  PlaygroundSettings,
  RequestPhase,
} from './interactive.ts';
export { CLIENT, defaultPlaygroundSettings, Playground } from './interactive.ts';
export type {
  ClientReaction,
  LogCell,
  MessageLook,
  MessageTone,
  NodeView,
  PlaygroundCoreInit,
  PlaygroundProtocol,
} from './interactive-protocol.ts';
/** Faults: actions, scripted scenarios, the random nemesis and `--faults` parsing. */
export type { FaultAction, NemesisState, ParsedFaults, ScheduledAction } from './nemesis.ts';
export { genericFaults, parseFaults, RandomNemesis } from './nemesis.ts';
/** The network model. */
export type { LatencyModel, LinkFaults } from './network.ts';
export { defaultLatency, Network } from './network.ts';
/** Options of a run, their defaults, and the replay command line. */
export type { SimOptions } from './options.ts';
export { defaultSimOptions, replayCommand } from './options.ts';
/** What a protocol family provides to be simulated. */
export type {
  CheckOutcome,
  ClusterView,
  CoreInit,
  DiskInit,
  FaultControl,
  Monitor,
  ProtocolFault,
  SimProtocol,
  Workload,
  WorkloadContext,
  WorkloadIo,
} from './protocol.ts';
/** The protocol registry behind `quorate sim <protocol>`. */
export type { AnySimProtocol } from './protocols.ts';
export { findProtocol, protocols } from './protocols.ts';
/** The primary-backup test fixture (deliberately unsafe). */
export { primaryBackup, primaryBackupKv } from './reference/plugin.ts';
/** Running a simulation and its result. */
export type { RunResult } from './run.ts';
export { runSimulation } from './run.ts';
/** The engine, for hosts that want its stats or view directly. */
export type { Finding, SimStats, Verdict } from './simulator.ts';
export { Simulator } from './simulator.ts';
/** The trace format (record types are documented in trace.ts). */
export type { TraceSink } from './trace.ts';
export { Tracer, toJson } from './trace.ts';
/** The reusable key-value workload and its linearizability check. */
export type {
  HistoryCheck,
  KvAdapter,
  KvOp,
  KvOutcome,
  KvWorkloadSettings,
} from './workload/kv.ts';
export { defaultKvSettings, KvWorkload } from './workload/kv.ts';
export { checkStepsMaxDefault, linearizabilityCheck } from './workload/linearizable.ts';
