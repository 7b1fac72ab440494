import { byteOrder, type MvccStore } from './mvcc.ts';
import type {
  CompactionRequest,
  CompactionResponse,
  EtcdOp,
  EtcdResult,
  KvError,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from './ops.ts';
import { evaluateCompare, hasDuplicateKey } from './range.ts';

/** Bounds on what one etcd operation may ask of the machine. */
export interface EtcdLimits {
  /** Most compares, and most ops per branch, of one txn (etcd's --max-txn-ops, 128). */
  readonly txnOpsMax: number;
  /** Most leases at once. */
  readonly leasesMax: number;
  /** Longest TTL a lease may be granted, seconds (etcd's MaxLeaseTTL). */
  readonly leaseTtlMax: number;
}

export const defaultEtcdLimits: EtcdLimits = {
  txnOpsMax: 128,
  leasesMax: 10_000,
  leaseTtlMax: 9_000_000_000,
};

/** Applies one etcd operation to the store (writes in their own transaction). */
export function applyEtcd(store: MvccStore, op: EtcdOp, limits: EtcdLimits): EtcdResult {
  switch (op.f) {
    case 'range':
      return op.key === '' ? { f: 'error', code: 'emptyKey' } : store.range(op);
    case 'put': {
      // The checks a txn of this one op would make, without building one: the hot path.
      const refused = store.checkPut(op);
      if (refused !== undefined) return refused;
      store.begin();
      const result = store.put(op);
      store.end();
      return result;
    }
    case 'deleteRange': {
      if (op.key === '') return { f: 'error', code: 'emptyKey' };
      store.begin();
      const result = store.deleteRange(op);
      store.end();
      return { ...result, revision: store.revision };
    }
    case 'txn':
      return applyTxn(store, op, limits);
    case 'compact':
      return applyCompact(store, op);
    case 'leaseGrant':
      return grantLease(store, op, limits);
    case 'leaseRevoke':
      return revokeLease(store, op);
    case 'leaseCheckpoint':
      for (const { id, remainingTtl } of op.checkpoints) {
        const lease = store.leases.get(id);
        if (lease !== undefined) lease.remainingTtl = remainingTtl;
      }
      return { f: 'leaseCheckpoint', revision: store.revision };
    case 'leaseTimeToLive': {
      const lease = store.leases.get(op.id);
      if (lease === undefined) return { f: 'error', code: 'leaseNotFound', lease: op.id };
      return {
        f: 'leaseTimeToLive',
        id: op.id,
        grantedTtl: lease.ttl,
        remainingTtl: lease.remainingTtl,
        keys: op.keys === true ? [...lease.keys].sort(byteOrder) : [],
        revision: store.revision,
      };
    }
    case 'leaseKeepAlive': {
      const lease = store.leases.get(op.id);
      if (lease === undefined) return { f: 'error', code: 'leaseNotFound', lease: op.id };
      return { f: 'leaseKeepAlive', id: op.id, ttl: lease.ttl, revision: store.revision };
    }
    case 'leaseLeases':
      return {
        f: 'leaseLeases',
        leases: [...store.leases.keys()].sort((a, b) => a - b),
        revision: store.revision,
      };
  }
}

/**
 * A txn, as etcd applies it: refuse what breaks the request rules (too many ops, a key
 * written twice); evaluate every compare, nested ones too, on the state before the txn; check
 * the chosen ops (revisions, leases, ignore flags) on that state, so an error applies
 * nothing; then run them in one store transaction, which takes one revision if it wrote.
 */
export function applyTxn(
  store: MvccStore,
  req: TxnRequest,
  limits: EtcdLimits,
): TxnResponse | KvError {
  const refused = checkShape(req, limits.txnOpsMax);
  if (refused !== undefined) return refused;
  const path = choose(store, req);
  const invalid = checkPath(store, req, path);
  if (invalid !== undefined) return invalid;
  store.begin();
  const result = execute(store, req, path);
  store.end();
  return { ...result, revision: store.revision };
}

/** The branch each txn takes: `succeeded`, and the paths of the txns nested in that branch. */
interface Path {
  readonly succeeded: boolean;
  readonly nested: readonly Path[];
}

function checkShape(req: TxnRequest, opsMax: number): KvError | undefined {
  if (req.compare.length > opsMax || req.success.length > opsMax || req.failure.length > opsMax) {
    return { f: 'error', code: 'tooManyOps', opsMax };
  }
  for (const c of req.compare) if (c.key === '') return { f: 'error', code: 'emptyKey' };
  for (const op of [...req.success, ...req.failure]) {
    if (op.f === 'txn') {
      const nested = checkShape(op, opsMax);
      if (nested !== undefined) return nested;
    } else if (op.key === '') {
      return { f: 'error', code: 'emptyKey' };
    }
  }
  if (hasDuplicateKey(req.success) || hasDuplicateKey(req.failure)) {
    return { f: 'error', code: 'duplicateKey' };
  }
  return undefined;
}

function choose(store: MvccStore, req: TxnRequest): Path {
  const succeeded = req.compare.every((c) => evaluateCompare(c, store.rangeKvs(c)));
  const ops = succeeded ? req.success : req.failure;
  const nested: Path[] = [];
  for (const op of ops) if (op.f === 'txn') nested.push(choose(store, op));
  return { succeeded, nested };
}

function checkPath(store: MvccStore, req: TxnRequest, path: Path): KvError | undefined {
  let n = 0;
  for (const op of path.succeeded ? req.success : req.failure) {
    let refused: KvError | undefined;
    switch (op.f) {
      case 'range':
        refused = store.checkRevision(op.revision ?? 0);
        break;
      case 'put':
        refused = store.checkPut(op);
        break;
      case 'deleteRange':
        break;
      case 'txn':
        refused = checkPath(store, op, path.nested[n++]!);
        break;
    }
    if (refused !== undefined) return refused;
  }
  return undefined;
}

function execute(store: MvccStore, req: TxnRequest, path: Path): TxnResponse {
  const responses: ResponseOp[] = [];
  let n = 0;
  for (const op of path.succeeded ? req.success : req.failure) {
    responses.push(executeOp(store, op, () => path.nested[n++]!));
  }
  return { f: 'txn', succeeded: path.succeeded, responses, revision: store.readRevision };
}

function executeOp(store: MvccStore, op: RequestOp, nested: () => Path): ResponseOp {
  switch (op.f) {
    case 'range': {
      const result = store.range(op);
      // checkPath refused every range the store would refuse.
      if (result.f === 'error')
        throw new Error(`txn range refused after its check: ${result.code}`);
      return result;
    }
    case 'put':
      return store.put(op);
    case 'deleteRange':
      return store.deleteRange(op);
    case 'txn':
      return execute(store, op, nested());
  }
}

function applyCompact(store: MvccStore, op: CompactionRequest): CompactionResponse | KvError {
  if (op.revision <= store.compactRevision) {
    return { f: 'error', code: 'compacted', compactRevision: store.compactRevision };
  }
  if (op.revision > store.revision) {
    return { f: 'error', code: 'futureRevision', revision: op.revision };
  }
  store.compact(op.revision);
  return { f: 'compact', revision: store.revision };
}

function grantLease(
  store: MvccStore,
  op: LeaseGrantRequest,
  limits: EtcdLimits,
): LeaseGrantResponse | KvError {
  if (op.ttl < 1 || op.ttl > limits.leaseTtlMax) {
    return { f: 'error', code: 'leaseTtlInvalid', ttl: op.ttl };
  }
  if (store.leases.has(op.id)) return { f: 'error', code: 'leaseExists', lease: op.id };
  if (store.leases.size >= limits.leasesMax) {
    return { f: 'error', code: 'leasesFull', leasesMax: limits.leasesMax };
  }
  const id = op.id !== 0 ? op.id : store.nextLeaseId();
  store.leases.set(id, { id, ttl: op.ttl, remainingTtl: -1, keys: new Set() });
  store.leaseIdHigh = Math.max(store.leaseIdHigh, id);
  store.leaseChanges++;
  return { f: 'leaseGrant', id, ttl: op.ttl, revision: store.revision };
}

function revokeLease(store: MvccStore, op: LeaseRevokeRequest): LeaseRevokeResponse | KvError {
  const lease = store.leases.get(op.id);
  if (lease === undefined) return { f: 'error', code: 'leaseNotFound', lease: op.id };
  store.begin();
  for (const key of [...lease.keys].sort(byteOrder)) store.deleteRange({ f: 'deleteRange', key });
  store.end();
  store.leases.delete(op.id);
  store.leaseChanges++;
  return { f: 'leaseRevoke', revision: store.revision };
}
