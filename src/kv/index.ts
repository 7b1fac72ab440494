/**
 * The replicated key-value state machine every quorate engine applies: deterministic,
 * exactly-once per client session (Raft dissertation, section 6.3), with compare-and-set,
 * prefix listing and a bounded change history for watches. Pure: no I/O, clocks or timers.
 */

/** Operations (`get`, `put`, `delete`, `cas`, `list`...), their results and the changes they make. */
export type {
  KvChange,
  KvCommand,
  KvEntry,
  KvLimits,
  KvOp,
  KvResult,
  KvSnapshot,
} from './machine.ts';
/** The machine itself, and the default bounds on keys, values, sessions and history. */
export { defaultKvLimits, KvStateMachine } from './machine.ts';
/** Validation of an untrusted operation (from the wire), and the read/write split. */
export { checkKvOp, isReadOp } from './validate.ts';
