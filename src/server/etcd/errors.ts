import { Metadata, status } from '@grpc/grpc-js';
import { unreachable } from '../../kernel/assert.ts';
import { NO_NODE } from '../../kernel/ids.ts';
import { type KvError, kvErrorGrpcCode, kvErrorMessage } from '../../kv/ops.ts';
import { AuthRefusedError, type EdgeAuthCode } from '../auth.ts';
import { RefusedError } from '../engine.ts';

/**
 * An answer that is a gRPC error, in etcd's words: clients (clientv3's rpctypes, the etcd3
 * npm client) recognise errors by code and exact message, so the message is etcd's and our
 * own explanation, when there is one, travels in the `quorate-reason` trailer.
 */
export class EtcdError extends Error {
  override readonly name = 'EtcdError';
  constructor(
    readonly code: status,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }

  /** What grpc-js sends: code, details and trailing metadata. */
  toStatus(): { code: status; details: string; metadata: Metadata } {
    const metadata = new Metadata();
    if (this.reason !== undefined) metadata.set('quorate-reason', asciiOf(this.reason));
    return { code: this.code, details: this.message, metadata };
  }
}

/** Metadata values must be printable ASCII. */
function asciiOf(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** etcd's messages (etcd api/v3rpc/rpctypes), with the codes etcd sends them with. */
export const etcdErrors = {
  emptyKey: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  keyNotFound: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: key not found'),
  tooManyOps: () =>
    new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  duplicateKey: () =>
    new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  compacted: () =>
    new EtcdError(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  futureRevision: () =>
    new EtcdError(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  leaseNotFound: () => new EtcdError(status.NOT_FOUND, 'etcdserver: requested lease not found'),
  memberNotFound: () => new EtcdError(status.NOT_FOUND, 'etcdserver: member not found'),
  memberBadUrls: (reason: string) =>
    new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid', reason),
  memberNotLearner: () =>
    new EtcdError(status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'),
  learnerNotReady: (reason: string) =>
    new EtcdError(
      status.FAILED_PRECONDITION,
      'etcdserver: can only promote a learner member which is in sync with leader',
      reason,
    ),
  noLeader: (reason?: string) => new EtcdError(status.UNAVAILABLE, 'etcdserver: no leader', reason),
  notLeader: (reason?: string) =>
    new EtcdError(status.FAILED_PRECONDITION, 'etcdserver: not leader', reason),
  leaderChanged: (reason?: string) =>
    new EtcdError(status.UNAVAILABLE, 'etcdserver: leader changed', reason),
  timeout: (reason?: string) =>
    new EtcdError(status.UNAVAILABLE, 'etcdserver: request timed out', reason),
  tooManyRequests: (reason?: string) =>
    new EtcdError(status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests', reason),
  stopped: (reason?: string) =>
    new EtcdError(status.UNAVAILABLE, 'etcdserver: server stopped', reason),
  requestTooLarge: () => new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: request is too large'),
  authNotEnabled: () =>
    new EtcdError(status.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'),
} as const;

/**
 * The one place a state machine refusal (src/kv/ops.ts KvError) becomes etcd's gRPC status.
 * etcd's gRPC layer words the store's own errors with its "etcdserver: " prefix
 * (rpctypes.ErrGRPCCompacted); the other messages already carry it.
 */
export function kvErrorStatus(error: KvError): EtcdError {
  const message = kvErrorMessage(error);
  const text = message.startsWith('mvcc: ') ? `etcdserver: ${message}` : message;
  const reason =
    error.code === 'compacted'
      ? `compacted at revision ${error.compactRevision}`
      : error.code === 'futureRevision'
        ? `revision ${error.revision} is ahead of this member's store`
        : undefined;
  return new EtcdError(status[kvErrorGrpcCode(error)], text, reason);
}

/** A request that etcd would serve but quorate cannot yet: says what is missing. */
export function unimplemented(what: string): EtcdError {
  return new EtcdError(status.UNIMPLEMENTED, `quorate: ${what} is not implemented yet`);
}

export function invalidArgument(problem: string): EtcdError {
  return new EtcdError(status.INVALID_ARGUMENT, `quorate: ${problem}`);
}

/**
 * The one place a refusal (src/replica/refusal.ts) becomes a gRPC status, beside
 * src/server/errors.ts for HTTP. `kind`: whether the call could have changed anything.
 */
export function refusalStatus(err: RefusedError, kind: 'read' | 'write'): EtcdError {
  const refusal = err.refusal;
  switch (refusal.type) {
    case 'notLeader':
      return refusal.leader === NO_NODE
        ? etcdErrors.noLeader()
        : etcdErrors.notLeader(`${err.message}; it was not reachable from here`);
    case 'overloaded':
      return etcdErrors.tooManyRequests(refusal.reason);
    case 'retry':
      return etcdErrors.timeout(refusal.reason);
    case 'outcomeUnknown':
      // etcd's timeout says the same: the write may or may not have been applied.
      return etcdErrors.timeout(
        kind === 'write' ? `the write may or may not apply: ${refusal.reason}` : refusal.reason,
      );
    case 'invalid':
      return invalidArgument(refusal.reason);
    case 'conflict':
      return new EtcdError(status.FAILED_PRECONDITION, `quorate: ${refusal.reason}`);
    case 'removed':
      return etcdErrors.stopped(refusal.reason);
    case 'unsupported':
      return new EtcdError(status.UNIMPLEMENTED, `quorate: ${refusal.reason}`);
    default:
      return unreachable(refusal, 'refusal');
  }
}

/** Any rejection of a handler as the status to send; unknown errors are Internal. */
export function toEtcdError(err: unknown, kind: 'read' | 'write'): EtcdError {
  if (err instanceof EtcdError) return err;
  if (err instanceof RefusedError) return refusalStatus(err, kind);
  if (err instanceof AuthRefusedError) return authStatusOf(err.code);
  const message = err instanceof Error ? err.message : String(err);
  return new EtcdError(status.INTERNAL, `quorate: ${message}`);
}

/** etcd's gRPC status for each auth refusal (rpctypes/error.go). */
export function authStatusOf(code: EdgeAuthCode): EtcdError {
  const err = new AuthRefusedError(code);
  switch (code) {
    case 'invalidToken':
      return new EtcdError(status.UNAUTHENTICATED, err.message);
    case 'permissionDenied':
      return new EtcdError(status.PERMISSION_DENIED, err.message);
    case 'userEmpty':
    case 'roleEmpty':
    case 'invalidAuthMgmt':
    case 'authFailed':
      return new EtcdError(status.INVALID_ARGUMENT, err.message);
    default:
      return new EtcdError(status.FAILED_PRECONDITION, err.message);
  }
}
