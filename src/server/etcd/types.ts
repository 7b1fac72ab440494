/**
 * The etcd v3 messages quorate reads and writes, as @grpc/proto-loader decodes them with
 * `protoLoadOptions` (proto.ts): snake_case names, 64-bit integers as numbers, enums as
 * numbers, bytes as Buffers. Hand-written rather than generated; `messageFields` below
 * names every field of every type here, and a test holds it against the loaded descriptors
 * (name and wire type), so a type that drifts from etcd's .proto fails the build's tests.
 */

export interface ResponseHeader {
  readonly cluster_id: number;
  readonly member_id: number;
  readonly revision: number;
  readonly raft_term: number;
}

export interface KeyValue {
  readonly key: Buffer;
  readonly create_revision: number;
  readonly mod_revision: number;
  readonly version: number;
  readonly value: Buffer;
  readonly lease: number;
}

/** RangeRequest.SortOrder and SortTarget, Compare.CompareResult and CompareTarget. */
export const SortOrder = { none: 0, ascend: 1, descend: 2 } as const;
export const SortTarget = { key: 0, version: 1, create: 2, mod: 3, value: 4 } as const;
export const CompareResult = { equal: 0, greater: 1, less: 2, notEqual: 3 } as const;
export const CompareTarget = { version: 0, create: 1, mod: 2, value: 3, lease: 4 } as const;
export const EventType = { put: 0, delete: 1 } as const;
export const WatchFilter = { noPut: 0, noDelete: 1 } as const;
export const AlarmAction = { get: 0, activate: 1, deactivate: 2 } as const;

export interface RangeRequest {
  readonly key: Buffer;
  readonly range_end: Buffer;
  readonly limit: number;
  readonly revision: number;
  readonly sort_order: number;
  readonly sort_target: number;
  readonly serializable: boolean;
  readonly keys_only: boolean;
  readonly count_only: boolean;
  readonly min_mod_revision: number;
  readonly max_mod_revision: number;
  readonly min_create_revision: number;
  readonly max_create_revision: number;
}

export interface RangeResponse {
  readonly header: ResponseHeader;
  readonly kvs: readonly KeyValue[];
  readonly more: boolean;
  readonly count: number;
}

export interface PutRequest {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly lease: number;
  readonly prev_kv: boolean;
  readonly ignore_value: boolean;
  readonly ignore_lease: boolean;
}

export interface PutResponse {
  readonly header: ResponseHeader;
  readonly prev_kv?: KeyValue | null;
}

export interface DeleteRangeRequest {
  readonly key: Buffer;
  readonly range_end: Buffer;
  readonly prev_kv: boolean;
}

export interface DeleteRangeResponse {
  readonly header: ResponseHeader;
  readonly deleted: number;
  readonly prev_kvs: readonly KeyValue[];
}

export interface RequestOp {
  readonly request?: 'request_range' | 'request_put' | 'request_delete_range' | 'request_txn';
  readonly request_range?: RangeRequest | null;
  readonly request_put?: PutRequest | null;
  readonly request_delete_range?: DeleteRangeRequest | null;
  readonly request_txn?: TxnRequest | null;
}

export interface ResponseOp {
  readonly response?: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  readonly response_range?: RangeResponse;
  readonly response_put?: PutResponse;
  readonly response_delete_range?: DeleteRangeResponse;
  readonly response_txn?: TxnResponse;
}

export interface Compare {
  readonly result: number;
  readonly target: number;
  readonly key: Buffer;
  readonly target_union?: 'version' | 'create_revision' | 'mod_revision' | 'value' | 'lease';
  readonly version?: number;
  readonly create_revision?: number;
  readonly mod_revision?: number;
  readonly value?: Buffer;
  readonly lease?: number;
  readonly range_end: Buffer;
}

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

export interface TxnResponse {
  readonly header: ResponseHeader;
  readonly succeeded: boolean;
  readonly responses: readonly ResponseOp[];
}

export interface CompactionRequest {
  readonly revision: number;
  readonly physical: boolean;
}

export interface CompactionResponse {
  readonly header: ResponseHeader;
}

export interface WatchCreateRequest {
  readonly key: Buffer;
  readonly range_end: Buffer;
  readonly start_revision: number;
  readonly progress_notify: boolean;
  readonly filters: readonly number[];
  readonly prev_kv: boolean;
  readonly watch_id: number;
  readonly fragment: boolean;
}

export interface WatchCancelRequest {
  readonly watch_id: number;
}

export interface WatchRequest {
  readonly request_union?: 'create_request' | 'cancel_request' | 'progress_request';
  readonly create_request?: WatchCreateRequest | null;
  readonly cancel_request?: WatchCancelRequest | null;
  readonly progress_request?: Record<string, never> | null;
}

export interface WatchEvent {
  readonly type: number;
  readonly kv: KeyValue;
  readonly prev_kv?: KeyValue | null;
}

export interface WatchResponse {
  readonly header: ResponseHeader;
  readonly watch_id: number;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compact_revision: number;
  readonly cancel_reason: string;
  readonly fragment: boolean;
  readonly events: readonly WatchEvent[];
}

export interface Member {
  readonly ID: number;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
  readonly isLearner: boolean;
}

export interface MemberAddRequest {
  readonly peerURLs: readonly string[];
  readonly isLearner: boolean;
}

export interface MemberAddResponse {
  readonly header: ResponseHeader;
  readonly member: Member;
  readonly members: readonly Member[];
}

/** MemberRemoveRequest and MemberPromoteRequest. */
export interface MemberIdRequest {
  readonly ID: number;
}

/** MemberRemove-, MemberList- and MemberPromoteResponse. */
export interface MembersResponse {
  readonly header: ResponseHeader;
  readonly members: readonly Member[];
}

export interface StatusResponse {
  readonly header: ResponseHeader;
  readonly version: string;
  readonly dbSize: number;
  readonly leader: number;
  readonly raftIndex: number;
  readonly raftTerm: number;
  readonly raftAppliedIndex: number;
  readonly errors: readonly string[];
  readonly dbSizeInUse: number;
  readonly isLearner: boolean;
}

export interface AlarmRequest {
  readonly action: number;
  readonly memberID: number;
  readonly alarm: number;
}

export interface AlarmResponse {
  readonly header: ResponseHeader;
  readonly alarms: readonly { readonly memberID: number; readonly alarm: number }[];
}

export interface LeaseGrantRequest {
  readonly TTL: number;
  readonly ID: number;
}

export interface LeaseGrantResponse {
  readonly header: ResponseHeader;
  readonly ID: number;
  readonly TTL: number;
  readonly error: string;
}

export interface LeaseIdRequest {
  readonly ID: number;
}

export interface LeaseRevokeResponse {
  readonly header: ResponseHeader;
}

export interface LeaseKeepAliveResponse {
  readonly header: ResponseHeader;
  readonly ID: number;
  readonly TTL: number;
}

export interface LeaseTimeToLiveRequest {
  readonly ID: number;
  readonly keys: boolean;
}

export interface LeaseTimeToLiveResponse {
  readonly header: ResponseHeader;
  readonly ID: number;
  readonly TTL: number;
  readonly grantedTTL: number;
  readonly keys: readonly Buffer[];
}

export interface LeaseLeasesResponse {
  readonly header: ResponseHeader;
  readonly leases: readonly LeaseIdRequest[];
}

/** A field's protobuf type as the descriptor names it (a message type by its full name). */
type FieldType = string;
type FieldsOf<T> = { readonly [K in keyof Required<T>]: FieldType };

/**
 * Every field of every message type above, with its protobuf type: the mapped types make
 * a field missing here a compile error, and the descriptor test makes a wrong one a failure.
 * Oneof selector names (`request`, `target_union`, ...) are marked `oneof`.
 */
export const messageFields = {
  'etcdserverpb.ResponseHeader': {
    cluster_id: 'uint64',
    member_id: 'uint64',
    revision: 'int64',
    raft_term: 'uint64',
  } satisfies FieldsOf<ResponseHeader>,
  'mvccpb.KeyValue': {
    key: 'bytes',
    create_revision: 'int64',
    mod_revision: 'int64',
    version: 'int64',
    value: 'bytes',
    lease: 'int64',
  } satisfies FieldsOf<KeyValue>,
  'etcdserverpb.RangeRequest': {
    key: 'bytes',
    range_end: 'bytes',
    limit: 'int64',
    revision: 'int64',
    sort_order: 'SortOrder',
    sort_target: 'SortTarget',
    serializable: 'bool',
    keys_only: 'bool',
    count_only: 'bool',
    min_mod_revision: 'int64',
    max_mod_revision: 'int64',
    min_create_revision: 'int64',
    max_create_revision: 'int64',
  } satisfies FieldsOf<RangeRequest>,
  'etcdserverpb.RangeResponse': {
    header: 'ResponseHeader',
    kvs: 'mvccpb.KeyValue',
    more: 'bool',
    count: 'int64',
  } satisfies FieldsOf<RangeResponse>,
  'etcdserverpb.PutRequest': {
    key: 'bytes',
    value: 'bytes',
    lease: 'int64',
    prev_kv: 'bool',
    ignore_value: 'bool',
    ignore_lease: 'bool',
  } satisfies FieldsOf<PutRequest>,
  'etcdserverpb.PutResponse': {
    header: 'ResponseHeader',
    prev_kv: 'mvccpb.KeyValue',
  } satisfies FieldsOf<PutResponse>,
  'etcdserverpb.DeleteRangeRequest': {
    key: 'bytes',
    range_end: 'bytes',
    prev_kv: 'bool',
  } satisfies FieldsOf<DeleteRangeRequest>,
  'etcdserverpb.DeleteRangeResponse': {
    header: 'ResponseHeader',
    deleted: 'int64',
    prev_kvs: 'mvccpb.KeyValue',
  } satisfies FieldsOf<DeleteRangeResponse>,
  'etcdserverpb.RequestOp': {
    request: 'oneof',
    request_range: 'RangeRequest',
    request_put: 'PutRequest',
    request_delete_range: 'DeleteRangeRequest',
    request_txn: 'TxnRequest',
  } satisfies FieldsOf<RequestOp>,
  'etcdserverpb.ResponseOp': {
    response: 'oneof',
    response_range: 'RangeResponse',
    response_put: 'PutResponse',
    response_delete_range: 'DeleteRangeResponse',
    response_txn: 'TxnResponse',
  } satisfies FieldsOf<ResponseOp>,
  'etcdserverpb.Compare': {
    result: 'CompareResult',
    target: 'CompareTarget',
    key: 'bytes',
    target_union: 'oneof',
    version: 'int64',
    create_revision: 'int64',
    mod_revision: 'int64',
    value: 'bytes',
    lease: 'int64',
    range_end: 'bytes',
  } satisfies FieldsOf<Compare>,
  'etcdserverpb.TxnRequest': {
    compare: 'Compare',
    success: 'RequestOp',
    failure: 'RequestOp',
  } satisfies FieldsOf<TxnRequest>,
  'etcdserverpb.TxnResponse': {
    header: 'ResponseHeader',
    succeeded: 'bool',
    responses: 'ResponseOp',
  } satisfies FieldsOf<TxnResponse>,
  'etcdserverpb.CompactionRequest': {
    revision: 'int64',
    physical: 'bool',
  } satisfies FieldsOf<CompactionRequest>,
  'etcdserverpb.CompactionResponse': {
    header: 'ResponseHeader',
  } satisfies FieldsOf<CompactionResponse>,
  'etcdserverpb.WatchRequest': {
    request_union: 'oneof',
    create_request: 'WatchCreateRequest',
    cancel_request: 'WatchCancelRequest',
    progress_request: 'WatchProgressRequest',
  } satisfies FieldsOf<WatchRequest>,
  'etcdserverpb.WatchCreateRequest': {
    key: 'bytes',
    range_end: 'bytes',
    start_revision: 'int64',
    progress_notify: 'bool',
    filters: 'FilterType',
    prev_kv: 'bool',
    watch_id: 'int64',
    fragment: 'bool',
  } satisfies FieldsOf<WatchCreateRequest>,
  'etcdserverpb.WatchCancelRequest': { watch_id: 'int64' } satisfies FieldsOf<WatchCancelRequest>,
  'etcdserverpb.WatchResponse': {
    header: 'ResponseHeader',
    watch_id: 'int64',
    created: 'bool',
    canceled: 'bool',
    compact_revision: 'int64',
    cancel_reason: 'string',
    fragment: 'bool',
    events: 'mvccpb.Event',
  } satisfies FieldsOf<WatchResponse>,
  'mvccpb.Event': {
    type: 'EventType',
    kv: 'KeyValue',
    prev_kv: 'KeyValue',
  } satisfies FieldsOf<WatchEvent>,
  'etcdserverpb.Member': {
    ID: 'uint64',
    name: 'string',
    peerURLs: 'string',
    clientURLs: 'string',
    isLearner: 'bool',
  } satisfies FieldsOf<Member>,
  'etcdserverpb.MemberAddRequest': {
    peerURLs: 'string',
    isLearner: 'bool',
  } satisfies FieldsOf<MemberAddRequest>,
  'etcdserverpb.MemberAddResponse': {
    header: 'ResponseHeader',
    member: 'Member',
    members: 'Member',
  } satisfies FieldsOf<MemberAddResponse>,
  'etcdserverpb.MemberRemoveRequest': { ID: 'uint64' } satisfies FieldsOf<MemberIdRequest>,
  'etcdserverpb.MemberPromoteRequest': { ID: 'uint64' } satisfies FieldsOf<MemberIdRequest>,
  'etcdserverpb.MemberListResponse': {
    header: 'ResponseHeader',
    members: 'Member',
  } satisfies FieldsOf<MembersResponse>,
  'etcdserverpb.StatusResponse': {
    header: 'ResponseHeader',
    version: 'string',
    dbSize: 'int64',
    leader: 'uint64',
    raftIndex: 'uint64',
    raftTerm: 'uint64',
    raftAppliedIndex: 'uint64',
    errors: 'string',
    dbSizeInUse: 'int64',
    isLearner: 'bool',
  } satisfies FieldsOf<StatusResponse>,
  'etcdserverpb.AlarmRequest': {
    action: 'AlarmAction',
    memberID: 'uint64',
    alarm: 'AlarmType',
  } satisfies FieldsOf<AlarmRequest>,
  'etcdserverpb.AlarmResponse': {
    header: 'ResponseHeader',
    alarms: 'AlarmMember',
  } satisfies FieldsOf<AlarmResponse>,
  'etcdserverpb.LeaseGrantRequest': {
    TTL: 'int64',
    ID: 'int64',
  } satisfies FieldsOf<LeaseGrantRequest>,
  'etcdserverpb.LeaseGrantResponse': {
    header: 'ResponseHeader',
    ID: 'int64',
    TTL: 'int64',
    error: 'string',
  } satisfies FieldsOf<LeaseGrantResponse>,
  'etcdserverpb.LeaseRevokeRequest': { ID: 'int64' } satisfies FieldsOf<LeaseIdRequest>,
  'etcdserverpb.LeaseRevokeResponse': {
    header: 'ResponseHeader',
  } satisfies FieldsOf<LeaseRevokeResponse>,
  'etcdserverpb.LeaseKeepAliveRequest': { ID: 'int64' } satisfies FieldsOf<LeaseIdRequest>,
  'etcdserverpb.LeaseKeepAliveResponse': {
    header: 'ResponseHeader',
    ID: 'int64',
    TTL: 'int64',
  } satisfies FieldsOf<LeaseKeepAliveResponse>,
  'etcdserverpb.LeaseTimeToLiveRequest': {
    ID: 'int64',
    keys: 'bool',
  } satisfies FieldsOf<LeaseTimeToLiveRequest>,
  'etcdserverpb.LeaseTimeToLiveResponse': {
    header: 'ResponseHeader',
    ID: 'int64',
    TTL: 'int64',
    grantedTTL: 'int64',
    keys: 'bytes',
  } satisfies FieldsOf<LeaseTimeToLiveResponse>,
  'etcdserverpb.LeaseStatus': { ID: 'int64' } satisfies FieldsOf<LeaseIdRequest>,
  'etcdserverpb.LeaseLeasesResponse': {
    header: 'ResponseHeader',
    leases: 'LeaseStatus',
  } satisfies FieldsOf<LeaseLeasesResponse>,
} as const;
