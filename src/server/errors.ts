import type { ErrorBody, ErrorCode } from '../client/wire.ts';
import { unreachable } from '../kernel/assert.ts';
import { NO_NODE } from '../kernel/ids.ts';
import { RefusedError } from './engine.ts';

/** An answer that is an error: rendered as `ErrorBody` with `status` and `headers`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly leaderClientUrl?: string,
  ) {
    super(message);
  }

  body(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.leaderClientUrl === undefined ? {} : { leaderClientUrl: this.leaderClientUrl }),
      },
    };
  }
}

/**
 * What the failed call was: a write or membership change may have taken effect when no
 * answer came back; a read never changes anything, so it is simply unavailable.
 */
export type CallKind = 'read' | 'write';

export function noLeader(retryAfterSeconds: number): ApiError {
  return new ApiError(503, 'no-leader', 'no leader is known; retry shortly', {
    'retry-after': String(retryAfterSeconds),
  });
}

/**
 * The one place a refusal becomes an HTTP status: every engine and the peer protocol speak
 * only the refusal vocabulary (src/replica/refusal.ts).
 */
export function refusalError(
  err: RefusedError,
  kind: CallKind,
  retryAfterSeconds: number,
): ApiError {
  const retryAfter = { 'retry-after': String(retryAfterSeconds) };
  const refusal = err.refusal;
  switch (refusal.type) {
    case 'notLeader':
      if (refusal.leader === NO_NODE || err.leaderClientUrl === undefined) {
        return noLeader(retryAfterSeconds);
      }
      return new ApiError(
        421,
        'not-leader',
        `${err.message}; send the request to ${err.leaderClientUrl}`,
        {},
        err.leaderClientUrl,
      );
    case 'overloaded':
      return new ApiError(429, 'overloaded', `overloaded: ${refusal.reason}`, retryAfter);
    case 'retry':
      return new ApiError(503, 'unavailable', `unavailable: ${refusal.reason}`, retryAfter);
    case 'outcomeUnknown':
      return kind === 'write'
        ? new ApiError(
            504,
            'unknown-outcome',
            `no answer in time; the write may or may not apply (${refusal.reason})`,
          )
        : new ApiError(503, 'unavailable', `unavailable: ${refusal.reason}`, retryAfter);
    case 'invalid':
      return new ApiError(400, 'invalid-request', refusal.reason);
    case 'conflict':
      return new ApiError(409, 'invalid-request', refusal.reason);
    case 'removed':
      return new ApiError(503, 'unavailable', refusal.reason, retryAfter);
    case 'unsupported':
      return new ApiError(501, 'not-implemented', refusal.reason);
    default:
      return unreachable(refusal, 'refusal');
  }
}

/** Maps an engine rejection (other than a forwardable notLeader refusal) to its answer. */
export function engineError(err: unknown, kind: CallKind, retryAfterSeconds: number): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof RefusedError) return refusalError(err, kind, retryAfterSeconds);
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError(500, 'internal', message);
}

interface FrameworkError {
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly validation?: unknown;
  readonly message?: unknown;
}

/** Maps fastify's own rejections (parsing, validation, limits) to the API's error codes. */
export function frameworkError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as FrameworkError;
  const message = typeof e.message === 'string' ? e.message : 'bad request';
  if (e.validation !== undefined) return new ApiError(400, 'invalid-request', message);
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'too-large', message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported-media-type', `${message}; send application/json`);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'invalid-request', message);
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 413) return new ApiError(413, 'too-large', message);
  if (status >= 400 && status < 500) return new ApiError(status, 'invalid-request', message);
  return new ApiError(500, 'internal', message);
}
