import type { ErrorCode } from './wire.ts';

/**
 * Codes a client call can fail with: the server's codes plus the client's own.
 * - `unreachable`: no endpoint answered and nothing was possibly applied.
 * - `too-many-pending`: more writes queued on this client than `pendingWritesMax`.
 * - `bad-response`: a server answered with something that is not the API.
 */
export type ClientErrorCode = ErrorCode | 'unreachable' | 'too-many-pending' | 'bad-response';

/** A definite failure: the operation did not take effect (except for `UnknownOutcomeError`). */
export class QuorateError extends Error {
  override readonly name: string = 'QuorateError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    /** HTTP status of the answer, when there was one. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * A write got no answer within its retries: it may or may not have been applied (and may
 * still apply later). Distinct from a definite failure so callers do not assume either.
 */
export class UnknownOutcomeError extends QuorateError {
  override readonly name = 'UnknownOutcomeError';
  constructor(message: string) {
    super('unknown-outcome', message);
  }
}

/** No endpoint could be reached; nothing was applied. */
export class UnreachableError extends QuorateError {
  override readonly name = 'UnreachableError';
  constructor(message: string) {
    super('unreachable', message);
  }
}
