import { assert } from '../kernel/index.ts';
import { Budget } from './budget.ts';
import { explainViolation } from './explain.ts';
import type { HistoryEvent, Json } from './history.ts';
import { compileKey, takesPart } from './model.ts';
import { type Operation, pairOperations } from './operations.ts';
import { dropUnobservedWrites } from './prune.ts';
import { searchLinearization } from './search.ts';

export interface CheckOptions {
  /** Wall-clock budget in ms; past it the verdict is 'unknown'. Needs `now`. */
  readonly budgetMs?: number;
  /** A monotonic clock in ms; src/check is pure, so the caller passes it (performance.now). */
  readonly now?: () => number;
  /** The value every key starts with; null (the default) means absent. */
  readonly initial?: Json;
  /** Deterministic budget: search steps over all keys, for tests and simulations. */
  readonly stepsMax?: number;
  /**
   * Read a failed cas as "the value was not `expected`" (Jepsen's etcd logs, porcupine's
   * model) instead of "did not happen" (the default, for clients that also fail a cas they
   * gave up on before it ran).
   */
  readonly failedCasObserved?: boolean;
  /** Visited configurations kept per key (memory bound); past it the verdict is 'unknown'. */
  readonly cacheEntriesMax?: number;
  /**
   * Drop indeterminate writes whose value no operation observed before searching (the
   * default; see `dropUnobservedWrites` for why the verdict is the same). False searches
   * every operation: for comparing the two in tests and measurements.
   */
  readonly dropUnobserved?: boolean;
}

export type CheckResult =
  | {
      readonly verdict: 'linearizable';
      readonly keys: number;
      /** Operations that took part, `dropped` included. */
      readonly ops: number;
      /** Indeterminate writes nobody observed, left out of the search. */
      readonly dropped: number;
    }
  | { readonly verdict: 'not-linearizable'; readonly key: string; readonly explanation: string }
  | { readonly verdict: 'unknown'; readonly reason: string };

/** Default for `cacheEntriesMax`: a few hundred MB for keys of a thousand operations. */
export const cacheEntriesMaxDefault = 4_000_000;

/**
 * Checks that a key-value history is linearizable, key by key (linearizability is
 * compositional, Herlihy & Wing 1990, so each key is checked on its own).
 *
 * `ok` operations took effect within their interval; `fail`ed operations did not happen
 * (see `failedCasObserved` for cas); `info`
 * operations may have taken effect at any time after their invocation; those that wrote a
 * value nobody observed are left out first (`dropUnobserved`). The first key found
 * not linearizable (smaller keys are searched first) decides; a key whose search ran out of
 * budget makes the verdict 'unknown' unless another key is found not linearizable.
 *
 * Real-time order is the order of `events` (`time` is only quoted in explanations).
 *
 * Throws `HistoryParseError` (with the 1-based event position) if the events do not pair up
 * into operations.
 */
export function checkHistory(
  events: readonly HistoryEvent[],
  options: CheckOptions = {},
): CheckResult {
  const cacheEntriesMax = options.cacheEntriesMax ?? cacheEntriesMaxDefault;
  assert(Number.isSafeInteger(cacheEntriesMax) && cacheEntriesMax > 0, 'cacheEntriesMax > 0');
  const budget = new Budget(options);
  const byKey = groupByKey(pairOperations(events), options.failedCasObserved ?? false);
  const keys = [...byKey.keys()].sort(
    (x, y) => byKey.get(x)!.length - byKey.get(y)!.length || (x < y ? -1 : x > y ? 1 : 0),
  );
  const drop = options.dropUnobserved ?? true;
  let unknown: string | undefined;
  let ops = 0;
  let dropped = 0;
  for (const key of keys) {
    const all = byKey.get(key)!;
    const searched = drop ? dropUnobservedWrites(all) : all;
    ops += all.length;
    dropped += all.length - searched.length;
    const model = compileKey(key, searched, options.initial ?? null);
    const outcome = searchLinearization(model, budget, cacheEntriesMax);
    switch (outcome.kind) {
      case 'linearizable':
        break;
      case 'violation':
        return {
          verdict: 'not-linearizable',
          key,
          explanation: explainViolation(model, outcome.frontier),
        };
      case 'unknown':
        unknown ??= `key ${JSON.stringify(key)}: ${outcome.reason}`;
        break;
    }
  }
  if (unknown !== undefined) return { verdict: 'unknown', reason: unknown };
  return { verdict: 'linearizable', keys: keys.length, ops, dropped };
}

function groupByKey(
  ops: readonly Operation[],
  failedCasObserved: boolean,
): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    if (!takesPart(op, failedCasObserved)) continue;
    const group = byKey.get(op.key);
    if (group === undefined) byKey.set(op.key, [op]);
    else group.push(op);
  }
  return byKey;
}
