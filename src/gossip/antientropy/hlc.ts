import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';

/**
 * A hybrid logical timestamp (Kulkarni et al., "Logical Physical Clocks", 2014), pure: the
 * physical part comes from the `now` input of each call, never from a clock. Versions of the
 * multi-writer map are `(wall, logical, node)`, ordered lexicographically, so two writes are
 * never equal unless they are the same write (node ids are unique) and last writer wins is
 * a total order.
 */
export interface Hlc {
  /** Milliseconds of the writer's physical clock, or a later one it heard of. */
  readonly wall: number;
  /** Counter breaking ties within one `wall` millisecond. */
  readonly logical: number;
  /** The writer: breaks ties between nodes that wrote in the same (wall, logical). */
  readonly node: NodeId;
}

export const HLC_ZERO: Hlc = { wall: 0, logical: 0, node: 0 };

/** Total order: -1, 0 or 1 as `a` is older, the same as, or newer than `b`. */
export function compareHlc(a: Hlc, b: Hlc): -1 | 0 | 1 {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return 0;
}

export function isHlc(value: unknown): value is Hlc {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    Number.isSafeInteger(v.wall) &&
    (v.wall as number) >= 0 &&
    Number.isSafeInteger(v.logical) &&
    (v.logical as number) >= 0 &&
    (v.logical as number) <= 0xffff_ffff &&
    Number.isInteger(v.node) &&
    (v.node as number) >= 1 &&
    (v.node as number) <= 0xffff_ffff
  );
}

/** HLC send/local-event rule: a timestamp newer than `last` and than the physical `now`. */
export function hlcNext(last: Hlc, now: number, node: NodeId): Hlc {
  const wall = Math.max(last.wall, Math.floor(now));
  const logical = wall === last.wall ? last.logical + 1 : 0;
  const next = { wall, logical, node };
  assert(
    next.wall > last.wall || next.logical > last.logical,
    'hlcNext must move the clock forward',
  );
  return next;
}

/** HLC receive rule: the clock after hearing `remote`, never older than either. */
export function hlcObserve(last: Hlc, remote: Hlc): Hlc {
  if (remote.wall > last.wall)
    return { wall: remote.wall, logical: remote.logical, node: last.node };
  if (remote.wall === last.wall && remote.logical > last.logical) {
    return { wall: last.wall, logical: remote.logical, node: last.node };
  }
  return last;
}

/**
 * Whether a remote timestamp is too far ahead of our physical clock to accept: a peer with a
 * runaway clock would otherwise drag every clock forward and win every write.
 * Default `clockDriftMaxMs` 60 000 (one minute, CockroachDB's order of magnitude).
 */
export function hlcTooFarAhead(remote: Hlc, now: number, clockDriftMaxMs: number): boolean {
  return remote.wall > now + clockDriftMaxMs;
}
