/**
 * Client histories, as recorded by the simulator's workloads and by real-cluster tests, and
 * read by the linearizability checker. One event per line in JSON Lines files:
 *
 *   {"process":3,"type":"invoke","f":"put","key":"k1","value":"v7","time":1250}
 *   {"process":3,"type":"ok","f":"put","key":"k1","value":"v7","time":1262}
 *
 * - `process`: a client process; at most one operation in flight per process, so its next
 *   event after an invoke is that operation's completion.
 * - `type`: `invoke`, then one of `ok` (took effect, returned `value`), `fail` (did not take
 *   effect) or `info` (unknown: may take effect at any time after the invoke, so it stays
 *   open to the end of the history). A process with an `info` op never invokes again.
 * - `f` and `value`: `get` (value = the value read, null = absent, on the ok), `put` (value
 *   written), `delete` (value null), `cas` (value `[expected, new]`; ok = swapped, fail = it
 *   did not take effect, for a compare mismatch or any other reason; the checker's
 *   `failedCasObserved` option reads it as "saw a value other than expected", as Jepsen's etcd
 *   logs mean it), `append` (value = a string appended to the current string; an absent key
 *   counts as the empty string).
 * - `time`: when the event was observed (simulated or wall ms); line order is real-time order.
 */
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';
export type KvFunction = 'get' | 'put' | 'delete' | 'cas' | 'append';

/** A JSON value as it appears in a history. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface HistoryEvent {
  readonly process: number;
  readonly type: EventType;
  readonly f: KvFunction;
  readonly key: string;
  readonly value: Json;
  readonly time: number;
}
