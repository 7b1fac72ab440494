import type { HistoryEvent, Json } from './history.ts';
import { type Operation, pairOperations } from './operations.ts';

/** Test oracle for the checker: the register semantics and an exhaustive search, naively. */

export const same = (x: Json, y: Json) => JSON.stringify(x) === JSON.stringify(y);

/**
 * The register semantics written out directly, without interning: the state after `op` if
 * it is legal from `before` as a completed (or, for info, applied) operation, else undefined.
 */
function applyDirectly(op: Operation, before: Json): { after: Json } | undefined {
  switch (op.f) {
    case 'get':
      return op.outcome !== 'ok' || same(op.output, before) ? { after: before } : undefined;
    case 'put':
      return { after: op.input };
    case 'delete':
      return { after: null };
    case 'append': {
      const base = before === null ? '' : before;
      return typeof base === 'string' ? { after: base + String(op.input) } : undefined;
    }
    case 'cas': {
      const [expected, next] = op.input as [Json, Json];
      if (op.outcome === 'fail') return same(before, expected) ? undefined : { after: before };
      return same(before, expected) ? { after: next } : undefined;
    }
  }
}

/**
 * Brute force over every order: places operations one at a time, any one no unplaced
 * operation returned before the call of; indeterminate operations may be left out (they
 * did not happen). Exponential: tiny histories only.
 */
export function bruteForceLinearizable(
  events: readonly HistoryEvent[],
  initial: Json,
  failedCasObserved: boolean,
): boolean {
  const ops = pairOperations(events).filter(
    (op) => op.outcome !== 'fail' || (failedCasObserved && op.f === 'cas'),
  );
  const placed = ops.map(() => false);
  const values = new Map<string, Json>();
  const required = ops.filter((op) => op.outcome !== 'info').length;
  const search = (done: number): boolean => {
    if (done === required) return true;
    return ops.some((op, i) => {
      if (placed[i]) return false;
      if (ops.some((other, j) => !placed[j] && other.returnIndex < op.callIndex)) return false;
      const before = values.has(op.key) ? values.get(op.key)! : initial;
      const step = applyDirectly(op, before);
      if (step === undefined) return false;
      placed[i] = true;
      values.set(op.key, step.after);
      const found = search(done + (op.outcome === 'info' ? 0 : 1));
      placed[i] = false;
      values.set(op.key, before);
      return found;
    });
  };
  return search(0);
}
