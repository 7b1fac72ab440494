import { type AuthError, authErrorGrpcCode, authErrorMessage } from './auth.ts';
import type { Bytes } from './bytes.ts';

/**
 * The etcd v3 operations of the replicated store (etcdserverpb's RangeRequest, PutRequest,
 * DeleteRangeRequest, TxnRequest, CompactionRequest and the lease requests), as the state
 * machine applies them. Field names follow the protobuf's in camelCase; a field etcd leaves
 * at its zero value is optional here and means the same as the zero value.
 *
 * Keys and values are `Bytes` (see bytes.ts): byte strings, compared byte by byte.
 * Revisions are integers >= 1; 0 means "current" where etcd says so.
 *
 * Every result is either the operation's response or a `KvError` (`{ f: 'error' }`),
 * never a thrown exception: a replica must answer a bad command the same way as every other
 * replica, and remember the answer for the session's retries.
 */

/** A key at one revision: etcd's mvccpb.KeyValue. */
export interface KeyValue {
  readonly key: Bytes;
  readonly value: Bytes;
  /** Revision of the put that created the key in its current generation (since the last delete). */
  readonly createRevision: number;
  /** Revision of the key's last write. */
  readonly modRevision: number;
  /** Writes since creation: 1 on creation, reset by a delete. */
  readonly version: number;
  /** Lease the key is attached to; 0 = none. */
  readonly lease: number;
}

/** `RangeRequest.SortOrder`. */
export type SortOrder = 'none' | 'ascend' | 'descend';
/** `RangeRequest.SortTarget`. */
export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';

/**
 * etcd's key-range convention, used by Range, DeleteRange, Compare and (elsewhere) Watch:
 * no `rangeEnd` (or empty) = the single key `key`; `rangeEnd` = "\0" = every key >= `key`;
 * otherwise the half-open interval [key, rangeEnd). A prefix p is [p, prefixEnd(p)).
 */
export interface KeyRange {
  readonly key: Bytes;
  readonly rangeEnd?: Bytes;
}

/** etcdserverpb.RangeRequest (serializable vs linearizable is the caller's choice, not the machine's). */
export interface RangeRequest extends KeyRange {
  readonly f: 'range';
  /** Most keys to return; 0 = no limit. `more` says whether some were left out. */
  readonly limit?: number;
  /** Read at this past revision; 0 = the current one. */
  readonly revision?: number;
  readonly sortOrder?: SortOrder;
  readonly sortTarget?: SortTarget;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  /** Keep only keys with modRevision >= this (0 = no bound); likewise the three below. */
  readonly minModRevision?: number;
  readonly maxModRevision?: number;
  readonly minCreateRevision?: number;
  readonly maxCreateRevision?: number;
}

/** etcdserverpb.RangeResponse. */
export interface RangeResponse {
  readonly f: 'range';
  /** Empty when `countOnly`; values empty when `keysOnly`. */
  readonly kvs: readonly KeyValue[];
  /** Whether more keys than `kvs` matched (only with `limit`). */
  readonly more: boolean;
  /** Keys in the range at the read revision, before the revision filters and the limit (as etcd). */
  readonly count: number;
  /** The store's current revision (the response header's). */
  readonly revision: number;
}

/** etcdserverpb.PutRequest. */
export interface PutRequest {
  readonly f: 'put';
  readonly key: Bytes;
  readonly value: Bytes;
  /** Attach the key to this lease (must exist); 0 = none (detaches). */
  readonly lease?: number;
  readonly prevKv?: boolean;
  /** Keep the current value (the key must exist; `value` must be empty). */
  readonly ignoreValue?: boolean;
  /** Keep the current lease (the key must exist; `lease` must be 0). */
  readonly ignoreLease?: boolean;
}

/** etcdserverpb.PutResponse; `version` is the key's version after the put (our addition). */
export interface PutResponse {
  readonly f: 'put';
  readonly revision: number;
  readonly version: number;
  /** With `prevKv`: the key before the put, null if it was absent. */
  readonly prevKv?: KeyValue | null;
}

/** etcdserverpb.DeleteRangeRequest. */
export interface DeleteRangeRequest extends KeyRange {
  readonly f: 'deleteRange';
  readonly prevKv?: boolean;
}

/** etcdserverpb.DeleteRangeResponse. A delete of nothing does not bump the revision. */
export interface DeleteRangeResponse {
  readonly f: 'deleteRange';
  readonly deleted: number;
  /** With `prevKv`: the deleted keys, in key order. */
  readonly prevKvs: readonly KeyValue[];
  readonly revision: number;
}

/** `Compare.CompareResult`. */
export type CompareResult = 'equal' | 'greater' | 'less' | 'notEqual';

/**
 * etcdserverpb.Compare: the target of every key in the range (all must hold; a range with no
 * key compares the zero KeyValue, except that a value compare on no key is false, as etcd).
 */
export type Compare = KeyRange & { readonly result: CompareResult } & (
    | { readonly target: 'version'; readonly version: number }
    | { readonly target: 'create'; readonly createRevision: number }
    | { readonly target: 'mod'; readonly modRevision: number }
    | { readonly target: 'value'; readonly value: Bytes }
    | { readonly target: 'lease'; readonly lease: number }
  );

/** etcdserverpb.RequestOp. */
export type RequestOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest;
/** etcdserverpb.ResponseOp. */
export type ResponseOp = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse;

/**
 * etcdserverpb.TxnRequest. As in etcd: every compare, nested ones too, is evaluated on the
 * state before the txn; the chosen ops then run in order, each range seeing the writes
 * before it; all writes share one new revision (sub-revisions in op order); a txn that
 * writes nothing does not bump the revision; a branch may not write a key twice
 * (`duplicateKey`) and any op's error aborts the whole txn with nothing applied.
 */
export interface TxnRequest {
  readonly f: 'txn';
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

/** etcdserverpb.TxnResponse. */
export interface TxnResponse {
  readonly f: 'txn';
  readonly succeeded: boolean;
  readonly responses: readonly ResponseOp[];
  readonly revision: number;
}

/**
 * etcdserverpb.CompactionRequest: forget history below `revision` (reads at revisions
 * < `revision` then fail with `compacted`). `physical` changes nothing here: the compaction
 * is done when the command applies.
 */
export interface CompactionRequest {
  readonly f: 'compact';
  readonly revision: number;
  readonly physical?: boolean;
}

export interface CompactionResponse {
  readonly f: 'compact';
  readonly revision: number;
}

/**
 * Grants a lease. `id` 0 = the machine picks the smallest unused id above every id it has
 * handed out (deterministic, unlike etcd's random ids). The machine stores the granted TTL
 * only: it has no clock, so expiry is the proposer's business (the leader counts time and
 * proposes `leaseRevoke`; a new leader restarts each lease's countdown at its full TTL, or
 * at the `remainingTtl` of its last checkpoint).
 */
export interface LeaseGrantRequest {
  readonly f: 'leaseGrant';
  readonly id: number;
  /** Seconds, >= 1. */
  readonly ttl: number;
}

export interface LeaseGrantResponse {
  readonly f: 'leaseGrant';
  readonly id: number;
  readonly ttl: number;
  readonly revision: number;
}

/** Revokes a lease: every key attached to it is deleted, all in one revision. */
export interface LeaseRevokeRequest {
  readonly f: 'leaseRevoke';
  readonly id: number;
}

export interface LeaseRevokeResponse {
  readonly f: 'leaseRevoke';
  readonly revision: number;
}

/**
 * etcd's LeaseCheckpoint: the leader records a lease's remaining TTL in the log so that a
 * new leader does not restart it from the full TTL. Unknown ids are ignored, as etcd does.
 */
export interface LeaseCheckpointRequest {
  readonly f: 'leaseCheckpoint';
  readonly checkpoints: readonly { readonly id: number; readonly remainingTtl: number }[];
}

export interface LeaseCheckpointResponse {
  readonly f: 'leaseCheckpoint';
  readonly revision: number;
}

/** A read: one lease's granted TTL and (with `keys`) the keys attached to it. */
export interface LeaseTimeToLiveRequest {
  readonly f: 'leaseTimeToLive';
  readonly id: number;
  readonly keys?: boolean;
}

export interface LeaseTimeToLiveResponse {
  readonly f: 'leaseTimeToLive';
  readonly id: number;
  readonly grantedTtl: number;
  /** The last checkpointed remaining TTL, or -1 if none (the proposer knows the live value). */
  readonly remainingTtl: number;
  /** In key order; empty unless `keys` was asked. */
  readonly keys: readonly Bytes[];
  readonly revision: number;
}

/**
 * A keep-alive, as the machine serves it: a read of the lease's granted TTL (or
 * `leaseNotFound`). It is never written to the log (etcd writes none either); the leader's
 * lessor (src/replica/lessor.ts) restarts the lease's countdown when it answers one.
 */
export interface LeaseKeepAliveRequest {
  readonly f: 'leaseKeepAlive';
  readonly id: number;
}

export interface LeaseKeepAliveResponse {
  readonly f: 'leaseKeepAlive';
  readonly id: number;
  /** The granted TTL, seconds: the countdown the keep-alive restarted. */
  readonly ttl: number;
  readonly revision: number;
}

/** A read: every lease id, ascending. */
export interface LeaseLeasesRequest {
  readonly f: 'leaseLeases';
}

export interface LeaseLeasesResponse {
  readonly f: 'leaseLeases';
  readonly leases: readonly number[];
  readonly revision: number;
}

/**
 * Why an operation was refused; nothing it asked was applied. `kvErrorMessage` gives etcd's
 * text for each, so the gRPC edge can answer with etcd's message (and code: see `grpc`).
 */
export type KvError =
  | { readonly f: 'error'; readonly code: 'compacted'; readonly compactRevision: number }
  | { readonly f: 'error'; readonly code: 'futureRevision'; readonly revision: number }
  | { readonly f: 'error'; readonly code: 'emptyKey' }
  | { readonly f: 'error'; readonly code: 'keyNotFound' }
  | { readonly f: 'error'; readonly code: 'valueProvided' }
  | { readonly f: 'error'; readonly code: 'leaseProvided' }
  | { readonly f: 'error'; readonly code: 'leaseNotFound'; readonly lease: number }
  | { readonly f: 'error'; readonly code: 'leaseExists'; readonly lease: number }
  | { readonly f: 'error'; readonly code: 'leaseTtlInvalid'; readonly ttl: number }
  /** Our bound (`leasesMax`); etcd has none, its message is ours. */
  | { readonly f: 'error'; readonly code: 'leasesFull'; readonly leasesMax: number }
  | { readonly f: 'error'; readonly code: 'duplicateKey' }
  | { readonly f: 'error'; readonly code: 'tooManyOps'; readonly opsMax: number }
  /** The auth store's refusals (auth.ts), including a call outside the caller's permissions. */
  | AuthError;

export type KvErrorCode = KvError['code'];

/** etcd's message for each error (server/storage/mvcc and api/v3rpc/rpctypes). */
export function kvErrorMessage(error: KvError): string {
  switch (error.code) {
    case 'compacted':
      return 'mvcc: required revision has been compacted';
    case 'futureRevision':
      return 'mvcc: required revision is a future revision';
    case 'emptyKey':
      return 'etcdserver: key is not provided';
    case 'keyNotFound':
      return 'etcdserver: key not found';
    case 'valueProvided':
      return 'etcdserver: value is provided';
    case 'leaseProvided':
      return 'etcdserver: lease is provided';
    case 'leaseNotFound':
      return 'etcdserver: requested lease not found';
    case 'leaseExists':
      return 'etcdserver: lease already exists';
    case 'leaseTtlInvalid':
      return 'etcdserver: too large lease TTL';
    case 'leasesFull':
      return `etcdserver: too many leases (at most ${error.leasesMax})`;
    case 'duplicateKey':
      return 'etcdserver: duplicate key given in txn request';
    case 'tooManyOps':
      return 'etcdserver: too many operations in txn request';
    default:
      return authErrorMessage(error.code);
  }
}

/** The gRPC status code etcd answers each error with. */
export function kvErrorGrpcCode(
  error: KvError,
): 'OUT_OF_RANGE' | 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'FAILED_PRECONDITION' | 'PERMISSION_DENIED' {
  switch (error.code) {
    case 'compacted':
    case 'futureRevision':
      return 'OUT_OF_RANGE';
    case 'leaseNotFound':
      return 'NOT_FOUND';
    case 'leaseExists':
    case 'leasesFull':
      return 'FAILED_PRECONDITION';
    case 'emptyKey':
    case 'keyNotFound':
    case 'valueProvided':
    case 'leaseProvided':
    case 'leaseTtlInvalid':
    case 'duplicateKey':
    case 'tooManyOps':
      return 'INVALID_ARGUMENT';
    default:
      return authErrorGrpcCode(error.code);
  }
}

/** The etcd operations that change state (they go through the log). */
export type EtcdWriteOp =
  | PutRequest
  | DeleteRangeRequest
  | TxnRequest
  | CompactionRequest
  | LeaseGrantRequest
  | LeaseRevokeRequest
  | LeaseCheckpointRequest;

/** The etcd operations that only read (a txn with no write is still applied through the log). */
export type EtcdReadOp =
  | RangeRequest
  | LeaseTimeToLiveRequest
  | LeaseLeasesRequest
  | LeaseKeepAliveRequest;

export type EtcdOp = EtcdWriteOp | EtcdReadOp;

export type EtcdResult =
  | RangeResponse
  | PutResponse
  | DeleteRangeResponse
  | TxnResponse
  | CompactionResponse
  | LeaseGrantResponse
  | LeaseRevokeResponse
  | LeaseCheckpointResponse
  | LeaseTimeToLiveResponse
  | LeaseLeasesResponse
  | LeaseKeepAliveResponse
  | KvError;

/**
 * A watch event: etcd's mvccpb.Event. For a delete, `kv` holds the key, the deleting
 * revision as `modRevision`, and zero version/createRevision/lease, as etcd's tombstones.
 */
export interface KvEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KeyValue;
  /** The key before this event (null if absent or compacted away). */
  readonly prevKv: KeyValue | null;
}

/** What `eventsSince` answers: the events, or that the history asked for is gone. */
export type EventsSince =
  | { readonly ok: true; readonly events: readonly KvEvent[] }
  | { readonly ok: false; readonly compactRevision: number };
