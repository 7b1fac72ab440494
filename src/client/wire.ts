import type { NodeId } from '../kernel/ids.ts';
import type { KvChange, KvEntry } from '../kv/machine.ts';

/**
 * The HTTP/JSON wire protocol of the key-value service, shared by the server (which imports
 * it) and the client, so the two cannot drift apart.
 *
 * Keys and values are bytes. By default they travel as Unicode text, exactly (stored as its
 * UTF-8): JSON bodies must be valid UTF-8 and their strings well-formed (no lone surrogates),
 * paths and queries percent-encoded UTF-8; anything else is refused with 400
 * `invalid-request`, never replaced (src/server/text.ts). With `?encoding=base64` on a KV
 * route, every key, prefix and value of the request and of the answer is standard base64
 * instead, so any bytes go through. A stored key or value that is not UTF-8, read as text,
 * comes back in base64 with `"encoding": "base64"` on its entry (or change): never replaced.
 *
 * Routes (all JSON unless noted; every error is `ErrorBody` with a 4xx/5xx status):
 *
 *   PUT    /v1/kv/:key            body {value}                        -> PutResponse
 *   GET    /v1/kv/:key?consistency=linearizable|stale                 -> GetResponse
 *   DELETE /v1/kv/:key                                                -> DeleteResponse
 *   POST   /v1/kv/:key/cas        body {expected: string|null, value}
 *                              or body {expectedVersion: integer, value} -> CasResponse
 *   GET    /v1/kv?prefix=&limit=&consistency=                          -> ListResponse
 *   GET    /v1/watch?prefix=&fromRevision=     text/event-stream, see below
 *   GET    /v1/status                                                 -> StatusResponse
 *   GET    /v1/members                                                -> MembersResponse
 *   POST   /v1/members            body {id, peerAddress, clientUrl}   adds a learner
 *   POST   /v1/members/:id/promote                                    learner -> voter
 *   DELETE /v1/members/:id
 *   GET    /metrics  (Prometheus text)       GET /healthz -> {ok, id}
 *
 * Keys are one path segment: the client percent-encodes them (encodeURIComponent), so a key
 * containing '/' travels as '%2F'. An absent key is not an error: GET answers 200 with
 * `entry: null`, and a failed compare-and-set answers 200 with `ok: false` and the current
 * entry.
 *
 * Exactly-once writes: a write may carry the headers `quorate-session` (1..2^53-1) and
 * `quorate-seq` (1..2^53-1), both or neither. The state machine remembers each session's last
 * sequence number and result, so resending the same (session, seq) returns the first result
 * instead of applying the write again. A session must issue one write at a time.
 *
 * Watch: server-sent events. First `event: watching` with `data: {"fromRevision": n}`, the
 * revision the stream starts after (to resume from if it drops early). Each change is `id: <revision>`, `event: change`, `data:
 * <KvChange JSON>`; changes after `fromRevision` (default: the current revision) whose key
 * starts with `prefix`. `Last-Event-ID` resumes after that revision. Comment lines are
 * heartbeats. `event: error` with `data: <ErrorBody>` (code `compacted` when the history
 * is gone, `slow-watcher` when the reader fell too far behind) ends the stream.
 */
export const HEADER = {
  session: 'quorate-session',
  seq: 'quorate-seq',
  /** On a forwarded answer: the leader's client URL, so clients can go there directly. */
  leader: 'quorate-leader',
} as const;

/** POST /v1/auth/authenticate: etcd's Authenticate over HTTP; send the token as a bearer. */
export interface AuthenticateRequest {
  readonly name: string;
  readonly password: string;
}

export interface AuthenticateResponse {
  readonly token: string;
}

export type ErrorCode =
  /** Malformed input: bad JSON, a missing or mistyped field, a bad header. */
  | 'invalid-request'
  | 'not-found'
  | 'method-not-allowed'
  | 'too-large'
  | 'unsupported-media-type'
  /** A write's sequence number is older than its session's last one: it was not applied. */
  | 'stale-sequence'
  /** No leader is known; retry later (Retry-After is set). */
  | 'no-leader'
  /** Another node leads and this one could not hand it the call; `leaderClientUrl` says where. */
  | 'not-leader'
  /** The leader is known but did not answer a forwarded request (older servers only). */
  | 'leader-unreachable'
  | 'overloaded'
  | 'unavailable'
  /** No answer in time: a write may or may not have been applied. */
  | 'unknown-outcome'
  /** This node's protocol does not implement the call (membership on Multi-Paxos). */
  | 'not-implemented'
  | 'compacted'
  | 'slow-watcher'
  | 'too-many-watchers'
  /** Auth is on and the request has no valid bearer token (or the password was wrong). */
  | 'unauthenticated'
  /** Auth is on and the user may not do this (etcd's "permission denied"). */
  | 'permission-denied'
  | 'internal';

export interface ErrorBody {
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    /** With `not-leader` and `no-leader`: the leader's client URL when known. */
    readonly leaderClientUrl?: string;
  };
}

export interface PutResponse {
  readonly revision: number;
  readonly version: number;
}

/** An entry on the wire: `KvEntry` with text or base64 key and value (see above). */
export interface KvEntryJson extends KvEntry {
  /** Present when the entry is in base64 although text was asked: it is not UTF-8. */
  readonly encoding?: 'base64';
}

export interface GetResponse {
  readonly entry: KvEntryJson | null;
  readonly revision: number;
}

export interface DeleteResponse {
  readonly deleted: boolean;
  readonly revision: number;
}

export interface CasResponse {
  readonly ok: boolean;
  /** After a swap, the new entry; after a mismatch, the current one (null if absent). */
  readonly entry: KvEntryJson | null;
  readonly revision: number;
}

export interface ListResponse {
  readonly entries: readonly KvEntryJson[];
  /** More keys match than `limit` allowed. */
  readonly more: boolean;
  readonly revision: number;
}

export interface MemberJson {
  readonly id: NodeId;
  readonly peerAddress: string;
  readonly clientUrl: string;
  readonly role: 'voter' | 'learner';
}

export interface PeerProgressJson {
  readonly id: NodeId;
  readonly match: number;
  readonly next: number;
  readonly state: string;
  readonly recentActive: boolean;
}

export interface StatusResponse {
  readonly id: NodeId;
  readonly protocol: 'raft' | 'multipaxos';
  readonly role: string;
  readonly term: number;
  /** NO_NODE (0) when no leader is known. */
  readonly leader: NodeId;
  readonly leaderClientUrl: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly revision: number;
  readonly members: readonly MemberJson[];
  /** Present on the leader only. */
  readonly progress: readonly PeerProgressJson[] | null;
}

export interface MembersResponse {
  readonly members: readonly MemberJson[];
}

export interface OkResponse {
  readonly ok: true;
}

export interface HealthResponse {
  readonly ok: true;
  readonly id: NodeId;
}

/** The `data` of the opening `watching` event. */
export interface WatchingEvent {
  readonly fromRevision: number;
}

/** The `data` of a `change` event. */
export type ChangeEvent = KvChange;

/** Largest value a session id or sequence number may take (exact in a JS number). */
export const SESSION_MAX = Number.MAX_SAFE_INTEGER;

/** The path of a key's resource; the key is one percent-encoded segment. */
export function keyPath(key: string): string {
  return `/v1/kv/${encodeURIComponent(key)}`;
}

/**
 * Connection error codes that prove a request never left this machine (no connection, or
 * TLS refused the server's certificate before any request byte was sent): a write that
 * failed this way certainly did not apply, so retrying it elsewhere is safe.
 */
export const neverSentErrorCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  // TLS refused the server's certificate before any request byte was sent.
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  // An issuer with the trusted CA's name whose signature does not check out.
  'CERT_SIGNATURE_FAILURE',
]);
