import { assert, InvariantError, unreachable } from '../kernel/index.ts';
import type { Json } from './history.ts';
import type { Operation } from './operations.ts';

/**
 * The key-value register model for one key, with values interned to small integers so the
 * search can hash and compare states cheaply. State 0 is "absent".
 *
 * Semantics of an operation as a step from state `s`:
 * - ok get reading v: legal iff s = v; unchanged.
 * - put v / delete (ok or info): s := v / absent. Always legal.
 * - cas [e, n] ok: legal iff s = e; s := n. Failed cas (only with `failedCasObserved`,
 *   otherwise it did not happen): legal iff s != e; unchanged.
 *   Indeterminate cas: always legal; s := n if s = e.
 * - append a (ok or info): s := s ++ a, absent counting as "". An ok append onto a value that
 *   is not a string is illegal; an indeterminate one is a no-op there.
 * An indeterminate (`info`) operation is always legal, because "it did not take effect" is the
 * same as "it took effect after everything else", a point its open interval always allows.
 */
export const ABSENT = 0;

/** Step kinds, as small integers for a typed-array encoding. */
export const STEP = {
  read: 0,
  write: 1,
  casSwapped: 2,
  casRefused: 3,
  casMaybe: 4,
  append: 5,
  appendMaybe: 6,
} as const;

/** Canonical text of a JSON value: equal values, equal text (object keys are sorted). */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] ?? null)}`).join(',')}}`;
}

/** Interns JSON values; null is `ABSENT`. */
export class ValueTable {
  private readonly ids = new Map<string, number>([['null', ABSENT]]);
  private readonly stringIds = new Map<string, number>();
  private readonly values: Json[] = [null];
  private readonly appended = new Map<number, Map<number, number>>();

  intern(value: Json): number {
    // Strings, the values appends create, skip the canonical text: it would copy them.
    const isString = typeof value === 'string';
    const ids = isString ? this.stringIds : this.ids;
    const text = isString ? value : canonicalJson(value);
    const known = ids.get(text);
    if (known !== undefined) return known;
    const id = this.values.length;
    ids.set(text, id);
    this.values.push(value);
    return id;
  }

  value(id: number): Json {
    const value = this.values[id];
    assert(value !== undefined, `value id ${id} was interned`);
    return value;
  }

  /** The id of `state ++ suffix`, or -1 when the state is neither a string nor absent. */
  append(state: number, suffix: number): number {
    let bySuffix = this.appended.get(state);
    if (bySuffix === undefined) {
      bySuffix = new Map();
      this.appended.set(state, bySuffix);
    }
    const known = bySuffix.get(suffix);
    if (known !== undefined) return known;
    const base = state === ABSENT ? '' : this.value(state);
    const tail = this.value(suffix);
    assert(typeof tail === 'string', 'append suffixes are validated as strings');
    const id = typeof base === 'string' ? this.intern(base + tail) : -1;
    bySuffix.set(suffix, id);
    return id;
  }
}

/** The operations of one key, encoded for the search. */
export interface CompiledKey {
  readonly key: string;
  readonly ops: readonly Operation[];
  readonly table: ValueTable;
  readonly initial: number;
  readonly kind: Uint8Array;
  readonly a: Int32Array;
  readonly b: Int32Array;
}

/**
 * Encodes the operations of one key, already filtered with `takesPart`.
 */
export function compileKey(key: string, ops: readonly Operation[], initial: Json): CompiledKey {
  const table = new ValueTable();
  const kind = new Uint8Array(ops.length);
  const a = new Int32Array(ops.length);
  const b = new Int32Array(ops.length);
  ops.forEach((op, i) => {
    assert(op.key === key, 'operations are grouped by key');
    const [k, x, y] = encode(op, table);
    kind[i] = k;
    a[i] = x;
    b[i] = y;
  });
  return { key, ops, table, initial: table.intern(initial), kind, a, b };
}

function encode(op: Operation, table: ValueTable): [number, number, number] {
  const maybe = op.outcome === 'info';
  switch (op.f) {
    case 'get':
      assert(op.outcome === 'ok', 'only ok gets reach the model');
      return [STEP.read, table.intern(op.output), 0];
    case 'put':
      assert(op.outcome !== 'fail', 'failed puts did not happen');
      return [STEP.write, table.intern(op.input), 0];
    case 'delete':
      assert(op.outcome !== 'fail', 'failed deletes did not happen');
      return [STEP.write, ABSENT, 0];
    case 'cas': {
      assert(Array.isArray(op.input) && op.input.length === 2, 'cas input is [expected, new]');
      const expected = table.intern(op.input[0] ?? null);
      const next = table.intern(op.input[1] ?? null);
      if (maybe) return [STEP.casMaybe, expected, next];
      return op.outcome === 'ok'
        ? [STEP.casSwapped, expected, next]
        : [STEP.casRefused, expected, 0];
    }
    case 'append':
      assert(op.outcome !== 'fail', 'failed appends did not happen');
      return [maybe ? STEP.appendMaybe : STEP.append, table.intern(op.input), 0];
    default:
      return unreachable(op.f, 'kv function');
  }
}

/**
 * Whether operation `op` counts in the model. Failed operations did not happen, except that
 * with `failedCasObserved` a failed cas reports a compare mismatch (the Jepsen etcd reading).
 */
export function takesPart(op: Operation, failedCasObserved: boolean): boolean {
  if (op.outcome === 'fail') return failedCasObserved && op.f === 'cas';
  if (op.outcome === 'info') return op.f !== 'get';
  return true;
}

/** Applies operation `i` to `state`: the next state, or -1 when the step is illegal. */
export function step(model: CompiledKey, i: number, state: number): number {
  const a = model.a[i]!;
  switch (model.kind[i]) {
    case STEP.read:
      return state === a ? state : -1;
    case STEP.write:
      return a;
    case STEP.casSwapped:
      return state === a ? model.b[i]! : -1;
    case STEP.casRefused:
      return state === a ? -1 : state;
    case STEP.casMaybe:
      return state === a ? model.b[i]! : state;
    case STEP.append:
      return model.table.append(state, a);
    case STEP.appendMaybe: {
      const next = model.table.append(state, a);
      return next < 0 ? state : next;
    }
    default:
      throw new InvariantError(`unknown step kind ${model.kind[i]}`);
  }
}
