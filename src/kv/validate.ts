import { isBytes } from './bytes.ts';
import type { KvOp, KvReadOp } from './machine.ts';
import type { Compare, RequestOp } from './ops.ts';

/**
 * A strict check of a `KvOp` that arrived from outside the process (a peer's forwarded call):
 * the exact fields of one variant, each of its type, nothing more, nested txns and compares
 * included; every key and value a byte string (bytes.ts). A command that reaches the log is
 * applied by every replica, so anything odd must be refused before it is proposed, not
 * discovered by the state machine of each replica in turn.
 *
 * Returns the op, typed, or why it is not one.
 */
export function checkKvOp(value: unknown): { ok: true; value: KvOp } | { ok: false; why: string } {
  const why = whyNotOp(value, opFields, 'op', TXN_DEPTH_MAX);
  return why === undefined ? { ok: true, value: value as KvOp } : { ok: false, why };
}

/** The operations that change nothing: only these may be served as reads. */
export function isReadOp(op: KvOp): op is KvReadOp {
  return readOps.has(op.f);
}

const readOps: ReadonlySet<KvOp['f']> = new Set<KvReadOp['f']>([
  'get',
  'list',
  'range',
  'leaseTimeToLive',
  'leaseLeases',
  'leaseKeepAlive',
]);

/** Deepest nesting of txns accepted (each level is a recursion in every replica). */
export const TXN_DEPTH_MAX = 8;

type FieldKind =
  | 'bytes'
  | 'bytes or null'
  | 'a count'
  | 'a positive count'
  | 'a flag'
  | 'a sort order'
  | 'a sort target'
  | 'a compare result'
  | 'compares'
  | 'ops'
  | 'checkpoints'
  | 'a name'
  | 'a password hash or null'
  | 'a permission'
  | 'a caller op';

/** `?` marks an optional field. */
type Fields = Readonly<Record<string, FieldKind | `${FieldKind}?`>>;

const rangeFields = {
  key: 'bytes',
  rangeEnd: 'bytes?',
  limit: 'a count?',
  revision: 'a count?',
  sortOrder: 'a sort order?',
  sortTarget: 'a sort target?',
  keysOnly: 'a flag?',
  countOnly: 'a flag?',
  minModRevision: 'a count?',
  maxModRevision: 'a count?',
  minCreateRevision: 'a count?',
  maxCreateRevision: 'a count?',
} as const satisfies Fields;

const putFields = {
  key: 'bytes',
  value: 'bytes',
  lease: 'a count?',
  prevKv: 'a flag?',
  ignoreValue: 'a flag?',
  ignoreLease: 'a flag?',
} as const satisfies Fields;

const deleteRangeFields = { key: 'bytes', rangeEnd: 'bytes?', prevKv: 'a flag?' } as const;
const txnFields = { compare: 'compares', success: 'ops', failure: 'ops' } as const;

/** Every op's fields besides `f`; `satisfies` keeps the names in step with the KvOp union. */
const opFields = {
  get: { key: 'bytes' },
  put: putFields,
  delete: { key: 'bytes' },
  cas: { key: 'bytes', expected: 'bytes or null', value: 'bytes' },
  casVersion: { key: 'bytes', expectedVersion: 'a count', value: 'bytes' },
  list: { prefix: 'bytes', limit: 'a positive count' },
  range: rangeFields,
  deleteRange: deleteRangeFields,
  txn: txnFields,
  compact: { revision: 'a positive count', physical: 'a flag?' },
  leaseGrant: { id: 'a count', ttl: 'a positive count' },
  leaseRevoke: { id: 'a positive count' },
  leaseCheckpoint: { checkpoints: 'checkpoints' },
  leaseTimeToLive: { id: 'a positive count', keys: 'a flag?' },
  leaseLeases: {},
  leaseKeepAlive: { id: 'a positive count' },
  authEnable: {},
  authDisable: {},
  userAdd: { name: 'a name', password: 'a password hash or null' },
  userDelete: { name: 'a name' },
  userChangePassword: { name: 'a name', password: 'a password hash or null' },
  userGrantRole: { user: 'a name', role: 'a name' },
  userRevokeRole: { name: 'a name', role: 'a name' },
  roleAdd: { name: 'a name' },
  roleDelete: { role: 'a name' },
  roleGrantPermission: { name: 'a name', perm: 'a permission' },
  roleRevokePermission: { role: 'a name', key: 'bytes', rangeEnd: 'bytes' },
  authStatus: {},
  userGet: { name: 'a name' },
  userList: {},
  roleGet: { role: 'a name' },
  roleList: {},
  authLookup: { name: 'a name' },
  asUser: { user: 'a name', op: 'a caller op' },
} as const satisfies {
  readonly [F in KvOp['f']]: {
    readonly [K in Exclude<keyof Extract<KvOp, { f: F }>, 'f'>]-?: FieldKind | `${FieldKind}?`;
  };
};

const requestOpFields = {
  range: rangeFields,
  put: putFields,
  deleteRange: deleteRangeFields,
  txn: txnFields,
} as const satisfies { readonly [F in RequestOp['f']]: Fields };

const compareFields = {
  version: { key: 'bytes', rangeEnd: 'bytes?', result: 'a compare result', version: 'a count' },
  create: {
    key: 'bytes',
    rangeEnd: 'bytes?',
    result: 'a compare result',
    createRevision: 'a count',
  },
  mod: { key: 'bytes', rangeEnd: 'bytes?', result: 'a compare result', modRevision: 'a count' },
  value: { key: 'bytes', rangeEnd: 'bytes?', result: 'a compare result', value: 'bytes' },
  lease: { key: 'bytes', rangeEnd: 'bytes?', result: 'a compare result', lease: 'a count' },
} as const satisfies { readonly [T in Compare['target']]: Fields };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function whyNotOp(
  value: unknown,
  table: Readonly<Record<string, Fields>>,
  what: string,
  depth: number,
): string | undefined {
  if (!isRecord(value)) return `an ${what} is an object`;
  const f = value.f;
  if (typeof f !== 'string' || !Object.hasOwn(table, f)) {
    return `unknown ${what} ${JSON.stringify(f)}`;
  }
  return whyNotFields(value, 'f', table[f]!, `${what} '${f}'`, depth);
}

function whyNotFields(
  value: Record<string, unknown>,
  tag: string,
  fields: Fields,
  what: string,
  depth: number,
): string | undefined {
  for (const name in value) {
    if (name !== tag && Object.hasOwn(value, name) && !Object.hasOwn(fields, name)) {
      return `${what} has no field '${name}'`;
    }
  }
  for (const { name, kind, optional } of compiled(fields)) {
    if (!Object.hasOwn(value, name)) {
      if (optional) continue;
      return `${what} lacks '${name}'`;
    }
    const why = whyNotKind(kind, value[name], depth);
    if (why !== undefined) return `${what} field '${name}': ${why}`;
  }
  return undefined;
}

interface FieldSpec {
  readonly name: string;
  readonly kind: FieldKind;
  readonly optional: boolean;
}

/**
 * Each field table as a list, made once: every forwarded call is checked on the leader, and
 * taking the table apart per call (its entries, each spec's `?` cut off) was a tenth of a
 * forwarded read's CPU on the leader's router path.
 */
const compiledFields = new WeakMap<Fields, readonly FieldSpec[]>();

function compiled(fields: Fields): readonly FieldSpec[] {
  let specs = compiledFields.get(fields);
  if (specs === undefined) {
    specs = Object.entries(fields).map(([name, spec]) => {
      const optional = spec.endsWith('?');
      return { name, kind: (optional ? spec.slice(0, -1) : spec) as FieldKind, optional };
    });
    compiledFields.set(fields, specs);
  }
  return specs;
}

function whyNotKind(kind: FieldKind, value: unknown, depth: number): string | undefined {
  switch (kind) {
    case 'bytes':
      return typeof value === 'string' && isBytes(value) ? undefined : 'not a byte string';
    case 'bytes or null':
      return value === null ? undefined : whyNotKind('bytes', value, depth);
    case 'a count':
      return Number.isSafeInteger(value) && (value as number) >= 0 ? undefined : 'not a count';
    case 'a positive count':
      return Number.isSafeInteger(value) && (value as number) >= 1 ? undefined : 'not >= 1';
    case 'a flag':
      return typeof value === 'boolean' ? undefined : 'not a boolean';
    case 'a sort order':
      return oneOf(value, ['none', 'ascend', 'descend']);
    case 'a sort target':
      return oneOf(value, ['key', 'version', 'create', 'mod', 'value']);
    case 'a compare result':
      return oneOf(value, ['equal', 'greater', 'less', 'notEqual']);
    case 'compares':
      return everyItem(value, (c) => {
        if (
          !isRecord(c) ||
          typeof c.target !== 'string' ||
          !Object.hasOwn(compareFields, c.target)
        ) {
          return 'a compare needs a target';
        }
        const fields = compareFields[c.target as Compare['target']];
        return whyNotFields(c, 'target', fields, `compare '${c.target}'`, depth);
      });
    case 'ops':
      if (depth <= 0) return `txns nest at most ${TXN_DEPTH_MAX} deep`;
      return everyItem(value, (op) => whyNotOp(op, requestOpFields, 'op', depth - 1));
    case 'a name':
      return typeof value === 'string' && value.length <= NAME_LENGTH_MAX
        ? undefined
        : `not a string of at most ${NAME_LENGTH_MAX} units`;
    case 'a password hash or null':
      if (value === null) return undefined;
      if (!isRecord(value)) return 'not a password hash';
      if (value.scheme !== 'scrypt') return 'not an scrypt hash';
      return whyNotFields(value, '', passwordFields, 'password hash', depth);
    case 'a permission':
      if (!isRecord(value)) return 'not a permission';
      return (
        oneOf(value.permType, ['read', 'write', 'readwrite']) ??
        whyNotFields(value, 'permType', permissionFields, 'permission', depth)
      );
    case 'a caller op': {
      if (isRecord(value) && value.f === 'asUser') return 'an asUser op cannot nest';
      return whyNotOp(value, opFields, 'op', depth);
    }
    case 'checkpoints':
      return everyItem(value, (c) =>
        isRecord(c)
          ? whyNotFields(c, '', checkpointFields, 'checkpoint', depth)
          : 'a checkpoint is an object',
      );
  }
}

/** Longest user or role name accepted, UTF-16 units. */
const NAME_LENGTH_MAX = 1024;

const passwordFields = {
  scheme: 'a name',
  salt: 'a name',
  hash: 'a name',
  cost: 'a positive count',
  blockSize: 'a positive count',
  parallelization: 'a positive count',
} as const satisfies Fields;

const permissionFields = { key: 'bytes', rangeEnd: 'bytes' } as const satisfies Fields;
const checkpointFields = {
  id: 'a positive count',
  remainingTtl: 'a count',
} as const satisfies Fields;

function oneOf(value: unknown, names: readonly string[]): string | undefined {
  return typeof value === 'string' && names.includes(value)
    ? undefined
    : `not one of ${names.join(', ')}`;
}

function everyItem(
  value: unknown,
  check: (item: unknown) => string | undefined,
): string | undefined {
  if (!Array.isArray(value)) return 'not a list';
  for (const [i, item] of value.entries()) {
    const why = check(item);
    if (why !== undefined) return `item ${i}: ${why}`;
  }
  return undefined;
}

/** A command's size for flow control: the bytes of its keys and values, plus a constant. */
export function opSizeBytes(op: KvOp | RequestOp): number {
  if (op.f === 'asUser') return op.user.length + opSizeBytes(op.op);
  let bytes = 32;
  if ('key' in op) bytes += op.key.length;
  if ('value' in op) bytes += op.value.length;
  if ('prefix' in op) bytes += op.prefix.length;
  if ('rangeEnd' in op && op.rangeEnd !== undefined) bytes += op.rangeEnd.length;
  if (op.f === 'txn') {
    for (const c of op.compare) bytes += 16 + c.key.length + ('value' in c ? c.value.length : 0);
    for (const o of [...op.success, ...op.failure]) bytes += opSizeBytes(o);
  }
  return bytes;
}
