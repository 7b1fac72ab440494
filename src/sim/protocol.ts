import type { HistoryEvent, Json } from '../check/history.ts';
import type { Core, CoreTypes } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';
import type { SimOptions } from './options.ts';

/**
 * What the simulator needs from a protocol family. It assumes neither a leader nor a
 * key-value workload: the plugin says how to build a core, what its disk is, which
 * invariants to watch and which workload drives it.
 *
 * All methods are declared as methods (not function-valued properties) so a plugin for a
 * specific `T` can sit in the registry next to others.
 */
export interface SimProtocol<T extends CoreTypes, Durable> {
  readonly name: string;
  readonly description: string;
  /** Cluster size when `--nodes` is not given. */
  readonly defaultNodes: number;
  /** Simulator options this protocol runs with unless the caller sets them (phase lengths...). */
  readonly simDefaults?: Partial<SimOptions>;
  /** Faults only this protocol understands (membership change...), enabled by name. */
  readonly faults?: readonly ProtocolFault<T, Durable>[];

  /**
   * A fresh core for `init.id`. `init.durable` is undefined on first boot, else what the
   * simulated disk acknowledged before the crash; the core must copy what it keeps.
   */
  createCore(init: CoreInit<Durable>): Core<T>;
  /** The disk of `node.id` before its first write (blank, or bootstrapped with `members`). */
  emptyDurable(node: DiskInit): Durable;
  /**
   * The simulated disk: `durable` after `item` was written and fsynced. It may mutate and
   * return `durable`, but must not keep a reference into `item` that the core could mutate.
   */
  applyPersist(durable: Durable, item: T['persist']): Durable;
  /**
   * Invariant checks that watch the run through `view`; called often, so keep them
   * incremental.
   */
  createMonitor(view: ClusterView<T, Durable>): Monitor<T, Durable>;
  /** The client workload for this run. */
  createWorkload(ctx: WorkloadContext): Workload<T>;
  /** A JSON form of a peer message for the trace (the default is the message itself). */
  describeMessage?(msg: T['msg']): Json;
}

/** What a node's disk may be formatted with. */
export interface DiskInit {
  readonly id: NodeId;
  readonly members: readonly NodeId[];
}

export interface CoreInit<Durable> {
  readonly id: NodeId;
  readonly members: readonly NodeId[];
  readonly durable: Durable | undefined;
  readonly rng: Rng;
  /** The node's local clock at boot. */
  readonly now: number;
}

/** A read-only window on the cluster for invariant checks. */
export interface ClusterView<T extends CoreTypes, Durable> {
  readonly members: readonly NodeId[];
  /** Global simulated time in ms. */
  now(): number;
  /** The live core on `id`, or undefined while it is crashed. */
  core(id: NodeId): Core<T> | undefined;
  /** What `id`'s disk holds right now. */
  durable(id: NodeId): Durable;
  isUp(id: NodeId): boolean;
  isPaused(id: NodeId): boolean;
  /** The fault kinds enabled for this run (empty: a healthy network throughout). */
  readonly faults: readonly string[];
}

/**
 * Invariant checks. Each hook returns a violation message or undefined; the first
 * violation ends the run. Hooks see every delivery and event as it happens, so a check
 * over thousands of nodes can be kept incremental instead of rescanning the cluster.
 */
export interface Monitor<T extends CoreTypes, Durable> {
  /** `node` applied `item`, the next in its delivery order. */
  onDeliver?(node: NodeId, item: T['deliver'], time: number): string | undefined;
  /** `node` published an observer event. */
  onEvent?(node: NodeId, event: T['event'], time: number): string | undefined;
  /** `node` lost its volatile state. */
  onCrash?(node: NodeId, time: number): void;
  /** After each step of `node` (an input and the output it caused). */
  afterStep?(view: ClusterView<T, Durable>, node: NodeId): string | undefined;
  /** Once, after the liveness phase ended with every operation complete. */
  atEnd?(view: ClusterView<T, Durable>): string | undefined;
}

export interface WorkloadContext {
  readonly members: readonly NodeId[];
  readonly clients: readonly ClientId[];
  /** Operations to invoke in the safety phase, over all clients. */
  readonly ops: number;
  readonly rng: Rng;
}

/** What a workload may do: talk to nodes over the simulated network and set timers. */
export interface WorkloadIo<T extends CoreTypes> {
  now(): number;
  /** Sends `req` from `client` to `node` (latency and client-link loss apply). */
  send(client: ClientId, node: NodeId, req: T['request']): void;
  /** Calls `onTimer(client, token)` at global time `at`. */
  setTimer(client: ClientId, at: number, token: number): void;
  /** Appends to the run's history (and the trace). */
  record(event: HistoryEvent): void;
}

/**
 * Simulated clients. A run is: `start`, then the safety phase while faults happen, until
 * `exhausted()`; then `heal()` with the network whole again, and the run waits for
 * `done()` within the liveness bound.
 */
export interface Workload<T extends CoreTypes> {
  start(io: WorkloadIo<T>): void;
  onReply(client: ClientId, from: NodeId, reply: T['reply']): void;
  onTimer(client: ClientId, token: number): void;
  /** Every safety-phase operation has been invoked. */
  exhausted(): boolean;
  /** Faults are over: finish what is pending and prove the cluster serves again. */
  heal(): void;
  /** Nothing is pending and the post-heal work completed. */
  done(): boolean;
  /** What is still pending, for a liveness failure message. */
  describePending(): string;
  /** End-of-run check over what the clients observed (e.g. linearizability). */
  check(): CheckOutcome;
}

export type CheckOutcome =
  | { readonly verdict: 'pass'; readonly summary: string }
  | { readonly verdict: 'violation'; readonly message: string }
  | { readonly verdict: 'unknown'; readonly reason: string };

/** A protocol-specific fault the nemesis can inject, e.g. a membership change. */
export interface ProtocolFault<T extends CoreTypes, Durable> {
  readonly name: string;
  /**
   * Does the fault now; returns a JSON description for the trace, or undefined if it did
   * not apply right now (no eligible node...).
   */
  apply(control: FaultControl<T, Durable>, rng: Rng): Json | undefined;
}

export interface FaultControl<T extends CoreTypes, Durable> {
  readonly view: ClusterView<T, Durable>;
  /** Hands `req` to `node` as if from the simulator's admin client (replies are dropped). */
  request(node: NodeId, req: T['request']): void;
}
