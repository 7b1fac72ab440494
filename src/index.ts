/**
 * quorate: consensus and replication protocols for TypeScript.
 *
 * The root entry gathers what most users start from; every layer has its own entry with
 * the rest: `quorate/kernel` (ids, quorum math, the `Core` contract), `quorate/raft`,
 * `quorate/paxos`, `quorate/kv`, `quorate/sim` (the deterministic simulator),
 * `quorate/check` (the linearizability checker), `quorate/runtime` (WAL, storage, TCP
 * transport), `quorate/client` and `quorate/server`.
 */

/** Is a client history linearizable? (Wing & Gong / Lowe, split by key.) */
export type { CheckOptions, CheckResult, HistoryEvent } from './check/index.ts';
export { checkHistory, HistoryBuilder, parseJsonl } from './check/index.ts';
/** The typed client of the key-value service (leader discovery, exactly-once retries). */
export type { ClientOptions, Consistency } from './client/index.ts';
export { QuorateClient, QuorateError } from './client/index.ts';
/** The contract every protocol core implements: inputs in, a `Ready` batch out, `advance()`. */
export type { ClientId, Core, CoreTypes, NodeId, Ready } from './kernel/index.ts';
/** Seeded randomness for cores and simulations (xoshiro128**). */
export { Rng } from './kernel/index.ts';
/** A Raft node as a pure core, with its defaults and the one function that changes durable state. */
export type { RaftOptions, RaftTypes } from './raft/index.ts';
export { applyPersist, defaultRaftOptions, initialDurableState, RaftCore } from './raft/index.ts';
