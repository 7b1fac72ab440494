/**
 * A broken invariant is a bug in quorate, never an operating condition: it throws
 * `InvariantError` and is not meant to be caught and ignored. Operating conditions (a stale
 * term, an unknown peer, a full queue) are handled with typed results instead.
 */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

/** Throws `InvariantError(why)` unless `condition` holds. */
export function assert(condition: boolean, why: string): asserts condition {
  if (!condition) throw new InvariantError(why);
}

/** For exhaustive switches over discriminated unions: unreachable when the types are right. */
export function unreachable(value: never, what: string): never {
  throw new InvariantError(`unreachable ${what}: ${JSON.stringify(value)}`);
}
