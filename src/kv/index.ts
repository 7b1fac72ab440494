/**
 * The replicated key-value state machine every quorate engine applies: deterministic,
 * exactly-once per client session (Raft dissertation, section 6.3), an etcd-style
 * multi-version store (one revision per write transaction, history until compaction, reads
 * at past revisions, txns, leases, watch events), plus the single-key operations of our HTTP
 * API expressed on it. Keys and values are byte strings (bytes.ts). Pure: no I/O, clocks or
 * timers.
 */

/** Byte strings: the representation of keys and values, and conversions at the edges. */
export {
  arrayFromBytes,
  type Bytes,
  base64FromBytes,
  bytesFromArray,
  bytesFromBase64,
  bytesFromText,
  isBytes,
  prefixEnd,
  textFromBytes,
} from './bytes.ts';
/** The etcd limits (txn ops, leases, TTL) and their defaults. */
export { defaultEtcdLimits, type EtcdLimits } from './etcd.ts';
/** Operations (`get`, `put`, `delete`, `cas`, `list`, and every etcd op), their results and changes. */
export type {
  KvChange,
  KvCommand,
  KvEntry,
  KvFeedChange,
  KvImage,
  KvLimits,
  KvOp,
  KvReadOp,
  KvResult,
  KvSnapshot,
} from './machine.ts';
/** The machine itself, and the default bounds on keys, values, sessions and history. */
export { defaultKvLimits, imageOf, KvStateMachine } from './machine.ts';
/** etcd's v3 requests and responses as the machine applies them (etcdserverpb / mvccpb). */
export type {
  CompactionRequest,
  CompactionResponse,
  Compare,
  CompareResult,
  DeleteRangeRequest,
  DeleteRangeResponse,
  EtcdOp,
  EtcdReadOp,
  EtcdResult,
  EtcdWriteOp,
  EventsSince,
  KeyRange,
  KeyValue,
  KvError,
  KvErrorCode,
  KvEvent,
  LeaseCheckpointRequest,
  LeaseCheckpointResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseLeasesRequest,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  SortOrder,
  SortTarget,
  TxnRequest,
  TxnResponse,
} from './ops.ts';
/** etcd's error texts and gRPC codes for each refusal. */
export { kvErrorGrpcCode, kvErrorMessage } from './ops.ts';
/** Validation of an untrusted operation (from the wire), and the read/write split. */
export { checkKvOp, isReadOp, opSizeBytes } from './validate.ts';
