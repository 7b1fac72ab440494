/**
 * The linearizability checker for key-value histories: Lowe's just-in-time linearization
 * search (the improved Wing & Gong algorithm) with memoization, split by key. Pure: the
 * clock for the time budget is passed in.
 *
 *     const result = checkHistory(parseJsonl(text), { budgetMs: 10_000, now: performance.now });
 */

/** Writes histories by hand, one event per time step: for tests and small workloads. */
export { HistoryBuilder } from './builder.ts';
/** The outcome of a check, and the options it takes. */
export type { CheckOptions, CheckResult } from './check.ts';
/** Checks a history; the entry point. Default for the per-key memory bound. */
export { cacheEntriesMaxDefault, checkHistory } from './check.ts';
/** Event and value types of histories. */
export type { EventType, HistoryEvent, Json, KvFunction } from './history.ts';
/** A malformed history, naming its 1-based line; the paired form of events. */
export type { Operation, Outcome } from './operations.ts';
export { HistoryParseError, pairOperations } from './operations.ts';
/** Parsers for JSON Lines, Jepsen etcd logs and Jepsen EDN histories. */
export { parseEdn, parseJepsen, parseJsonl } from './parse.ts';
