import type { KvOp } from './machine.ts';

/**
 * A strict check of a `KvOp` that arrived from outside the process (a peer's forwarded call):
 * the exact fields of one variant, each of its type, nothing more. A command that reaches the
 * log is applied by every replica, so anything odd must be refused before it is proposed,
 * not discovered by the state machine of each replica in turn.
 *
 * Returns the op, typed, or why it is not one.
 */
export function checkKvOp(value: unknown): { ok: true; value: KvOp } | { ok: false; why: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, why: 'an op is an object' };
  }
  const fields = value as Record<string, unknown>;
  const f = fields.f;
  if (typeof f !== 'string' || !Object.hasOwn(opFields, f)) {
    return { ok: false, why: `unknown op ${JSON.stringify(f)}` };
  }
  const expected = opFields[f as KvOp['f']];
  const names = Object.keys(fields);
  if (names.length !== Object.keys(expected).length + 1) {
    return { ok: false, why: `op '${f}' has fields [${names.join(', ')}]` };
  }
  for (const [name, kind] of Object.entries(expected)) {
    if (!Object.hasOwn(fields, name)) return { ok: false, why: `op '${f}' lacks '${name}'` };
    if (!fieldFits(kind, fields[name])) {
      return { ok: false, why: `op '${f}' field '${name}' is not ${kind}` };
    }
  }
  return { ok: true, value: value as KvOp };
}

/** The operations that change nothing: only these may be served as reads. */
export function isReadOp(op: KvOp): op is Extract<KvOp, { f: 'get' } | { f: 'list' }> {
  return op.f === 'get' || op.f === 'list';
}

type FieldKind = 'a string' | 'a string or null' | 'a count' | 'a positive count';

/** Every op's fields besides `f`; `satisfies` keeps it in step with the KvOp union. */
const opFields = {
  get: { key: 'a string' },
  put: { key: 'a string', value: 'a string' },
  delete: { key: 'a string' },
  cas: { key: 'a string', expected: 'a string or null', value: 'a string' },
  casVersion: { key: 'a string', expectedVersion: 'a count', value: 'a string' },
  list: { prefix: 'a string', limit: 'a positive count' },
} as const satisfies {
  readonly [F in KvOp['f']]: {
    readonly [K in Exclude<keyof Extract<KvOp, { f: F }>, 'f'>]-?: FieldKind;
  };
};

function fieldFits(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 'a string':
      return typeof value === 'string';
    case 'a string or null':
      return value === null || typeof value === 'string';
    case 'a count':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'a positive count':
      return Number.isSafeInteger(value) && (value as number) >= 1;
  }
}
