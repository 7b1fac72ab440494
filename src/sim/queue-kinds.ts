/** Event kinds on the simulator's queue, and what their `a`, `b` and payload carry. */
export const QueueKind = {
  /** a: destination endpoint; b: messageId * endpoints + source endpoint; payload: message. */
  deliver: 1,
  /** a: node index; b: tick generation (stale generations are ignored). */
  tick: 2,
  /** a: node index; b: process incarnation when the fsync started. */
  fsync: 3,
  /** a: client id; b: the workload's token. */
  clientTimer: 4,
  /** payload: a scripted FaultAction, or undefined for the random nemesis's next move. */
  nemesis: 5,
  /** a: node index; b: process incarnation; payload: a `SlowInput`, or undefined for a tick. */
  slowInput: 6,
} as const;
