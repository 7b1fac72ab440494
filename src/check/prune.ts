import { assert } from '../kernel/index.ts';
import type { Json } from './history.ts';
import { canonicalJson } from './model.ts';
import type { Operation } from './operations.ts';

/**
 * Drops the indeterminate writes of one key whose value no operation ever observed: they
 * cannot change the verdict, and each one left in doubles the configurations the search may
 * visit (a timed-out write is legal at every point after its call).
 *
 * A candidate is an `info` put of v, `info` delete (v = absent) or `info` cas [e, v]. Let H
 * be the key's operations (those that take part, see `takesPart`) and W a candidate with no
 * observer of v in H, where an observer of v is
 * - an ok get that read v,
 * - an ok or info cas expecting v (it swaps on v, and may not on the value W's absence
 *   leaves),
 * - a refused cas expecting anything but v (it is legal on v, and may not be on the value
 *   W's absence leaves; refused cas take part only with `failedCasObserved`). A refused cas
 *   expecting v is illegal on v, so it never runs where W's value is the state,
 * - any append (it turns v into v ++ a, a value derived from v): a key with an append keeps
 *   every operation.
 * Then H is linearizable iff H \ {W} is:
 * - If: linearize W last. An info operation may take effect at any point after its call
 *   and its put, delete or cas step is always legal, so appending it keeps the order legal
 *   and in real-time order (W has no return, so nothing must follow it).
 * - Only if: take a linearization L of H. If W's step in L did not change the state (a cas
 *   not matching, or a write of the value already there), L \ {W} passes through the same
 *   states. Otherwise the state is v from W up to the next operation X that sets the state
 *   regardless of it (a put or a delete), or to the end. Every operation Y in
 *   between ran on v, so by the rules above Y is not an ok get (it would have read v), not
 *   an ok cas (it would expect v), not a refused cas (expecting v it is illegal on v,
 *   expecting another value it is an observer) and not an append; Y is an info cas not
 *   expecting v, a no-op on v.
 *   Remove W and move every such Y to the end of L: before W and from X on the states are
 *   those of L; the Ys at the end are info steps, always legal; moving an info operation
 *   later breaks no real-time edge. So H \ {W} is linearizable.
 * Values are compared as the model interns them (canonical JSON), so a value written by
 * several operations is one value: a read of it observes every write of it, whichever it
 * read. Dropping repeats to a fixpoint: a dropped info cas no longer observes its expected
 * value, and the argument applies to H \ {W} in turn, whose observers are a subset of H's.
 * Only the operations of one key are given: other keys are independent (compositionality).
 */
export function dropUnobservedWrites(ops: readonly Operation[]): Operation[] {
  if (ops.some((op) => op.f === 'append')) return [...ops];
  let kept: readonly Operation[] = ops;
  for (;;) {
    const observers = observersOf(kept);
    const next = kept.filter((op) => !isUnobservedWrite(op, observers));
    if (next.length === kept.length) return [...kept];
    assert(next.length < kept.length, 'dropping only removes operations');
    kept = next;
  }
}

interface Observers {
  /** Canonical texts of the values some operation observes. */
  readonly values: ReadonlySet<string>;
  /** Expected values (canonical texts) of the refused cas: each observes every other value. */
  readonly refusedExpected: ReadonlySet<string>;
}

function observersOf(ops: readonly Operation[]): Observers {
  const values = new Set<string>();
  const refusedExpected = new Set<string>();
  for (const op of ops) {
    if (op.f === 'get') {
      assert(op.outcome === 'ok', 'only ok gets take part');
      values.add(canonicalJson(op.output));
    } else if (op.f === 'cas') {
      const expected = canonicalJson(casInput(op)[0]);
      if (op.outcome === 'fail') refusedExpected.add(expected);
      else values.add(expected);
    }
  }
  return { values, refusedExpected };
}

function isUnobservedWrite(op: Operation, observers: Observers): boolean {
  if (op.outcome !== 'info') return false;
  let written: Json;
  if (op.f === 'put') written = op.input;
  else if (op.f === 'delete') written = null;
  else if (op.f === 'cas') written = casInput(op)[1];
  else return false;
  const text = canonicalJson(written);
  if (observers.values.has(text)) return false;
  // A refused cas expecting something other than v is legal on v: it observes v.
  for (const expected of observers.refusedExpected) if (expected !== text) return false;
  return true;
}

function casInput(op: Operation): readonly [Json, Json] {
  const input = op.input;
  assert(Array.isArray(input) && input.length === 2, 'cas input is [expected, new]');
  return [input[0] ?? null, input[1] ?? null];
}
